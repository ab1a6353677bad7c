// The kernel table: for each weight type, how the forward pass multiplies by it. A type with a
// codec (quant/) needs no row here: it gets the generic kernels (rows dequantized by its codec,
// tiles through SGEMM, dot products in float; under ggml rounding its activations rounded to
// the codec's ActFormat first). A row adds faster or ggml-exact kernels for one type. Looked up
// once per weight, when its view is made (make_weight_view): the forward pass never asks a
// weight for its type.
#pragma once
#include <cstdint>

#include "core/thread_pool.h"
#include "imq/quant.h"

namespace imq::kernels {

struct WeightView;
class MatmulContext;
namespace ggml {
class ExactInput;
}

struct TypeKernels {
  // Rows as floats, n elements; null: the codec's dequantize.
  void (*to_float)(const uint8_t* src, float* dst, int64_t n) = nullptr;
  // One weight row · one float activation row of n; null: to_float, then dot_f32.
  float (*dot)(const uint8_t* row, const float* x, int64_t n) = nullptr;
  // The rows are floats already: SGEMM reads them in place.
  bool float_rows = false;
  // The product as llama.cpp's CPU backend computes it (the ggml-exact backend), y [n, ne1],
  // with x converted as that backend converts it for this type. expert_rows: the rows routed to
  // one expert (ggml's mul_mat_id, which never takes the gemm path). Null: x rounded to the
  // codec's ActFormat, then the float matmul.
  void (*exact)(const WeightView& w, ggml::ExactInput& x, float* y, MatmulContext& ctx,
                bool expert_rows) = nullptr;
  // The MoE router's product under ggml rounding (its last bits choose experts); null: exact.
  void (*exact_router)(const WeightView& w, ggml::ExactInput& x, float* y, MatmulContext& ctx) = nullptr;
};

// The row for a codec's type (the generic row when the type has none of its own).
const TypeKernels& type_kernels(const quant::Codec& codec);

}  // namespace imq::kernels
