#include "kernels/activations.h"

#include <algorithm>

#include "core/fp16.h"
#include "imq/error.h"
#include "imq/ggml_types.h"
#include "kernels/vec.h"

namespace imq::kernels {

ActFormat activation_format(uint32_t weight_type) {
  switch (GgmlType(weight_type)) {
    case GgmlType::F32: return ActFormat::F32;
    case GgmlType::F16: return ActFormat::F16;
    case GgmlType::BF16: return ActFormat::BF16;
    case GgmlType::Q4_0: case GgmlType::Q4_1: case GgmlType::Q5_0: case GgmlType::Q5_1:
    case GgmlType::Q8_0: case GgmlType::IQ4_NL:
      return ActFormat::Q8_0;
    case GgmlType::Q2_K: case GgmlType::Q3_K: case GgmlType::Q4_K: case GgmlType::Q5_K:
    case GgmlType::Q6_K: case GgmlType::IQ4_XS: case GgmlType::Q3_HIFI:
      return ActFormat::Q8_K;
    default: return ActFormat::F32;
  }
}

void round_activations(ActFormat f, const float* x, int64_t n, int64_t ne0, float* out) {
  const int64_t total = n * ne0;
  switch (f) {
    case ActFormat::F32:
      if (out != x) std::copy(x, x + total, out);
      return;
    case ActFormat::F16:
      round_f16(x, total, out);
      return;
    case ActFormat::BF16:
      for (int64_t i = 0; i < total; ++i) out[i] = bf16_to_f32(f32_to_bf16(x[i]));
      return;
    case ActFormat::Q8_0:
      if (ne0 % 32) throw_error("Q8_0 activations need rows of a multiple of 32, got {}", ne0);
      round_q8_0(x, total, out);
      return;
    case ActFormat::Q8_K:
      if (ne0 % 256) throw_error("Q8_K activations need rows of a multiple of 256, got {}", ne0);
      round_q8_k(x, total, out);
      return;
  }
}

}  // namespace imq::kernels
