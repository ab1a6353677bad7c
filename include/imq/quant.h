// Block codecs: one row per supported type in one registry (spec g). Every codec reproduces
// ggml's blocks byte for byte: `quantize` with importance == nullptr is llama-quantize without an
// imatrix, with importance (one weight per column, n_per_row floats) it is llama-quantize with one.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "imq/ggml_types.h"

namespace imq::quant {

struct GridOps;  // src/quant/grid.h

// What ggml converts the activations into before a product with a weight of a type (its
// "vec_dot_type"): the evaluation rounds them the same way (kernels/activations.h). Q4_1 and
// Q5_1 take Q8_1, whose values round as Q8_0's.
enum class ActFormat : uint8_t { F32, F16, BF16, Q8_0, Q8_K };

struct Codec {
  GgmlType type;
  std::string_view name;    // ggml name, e.g. "q4_K"
  uint32_t block_size;      // elements per block
  uint32_t type_size;       // bytes per block
  // n must be a multiple of block_size; src holds n / block_size blocks.
  void (*dequantize)(const void* src, float* dst, int64_t n);
  // Quantizes nrows rows of n_per_row floats (n_per_row a multiple of block_size) into
  // nrows * n_per_row / block_size blocks; returns bytes written. importance may be null.
  size_t (*quantize)(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                     const float* importance);
  // The activations' format in this type's products (ggml's vec_dot_type).
  ActFormat act = ActFormat::F32;
  // imq's own search (`imq quantize --search imq`), same signature and bytes layout as
  // `quantize` but choosing the block values to lower the weighted squared error of each block
  // as decoded (never above the reference's); nullptr where the type has none (then --search imq
  // uses `quantize`). Set for Q2_K, Q3_K, Q4_K, Q5_K, Q6_K (src/quant/kquants/search_imq.h).
  size_t (*quantize_imq)(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                         const float* importance) = nullptr;
  // The block grid for error-compensated quantization (`imq quantize --calibration-file`):
  // nullptr where the type has none (its tensors are then quantized block by block as above).
  const GridOps* grid = nullptr;
};

// The codec for a type id, or nullptr when imq cannot (de)quantize that type.
const Codec* find_codec(GgmlType type);
// Same, throwing imq::Error("no codec for type X") when missing.
const Codec& codec(GgmlType type);
// Every registered codec, in type-id order.
const std::vector<Codec>& all_codecs();

// Bytes for n elements of a type (n a multiple of the block size).
size_t row_size(const Codec& c, int64_t n);

}  // namespace imq::quant
