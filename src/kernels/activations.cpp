#include "kernels/activations.h"

#include <algorithm>

#include "core/fp16.h"
#include "imq/error.h"
#include "kernels/vec.h"

namespace imq::kernels {

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
