// llama.cpp's activation codes, one block at a time. The single definition behind both the
// rounding of kernels/activations.h (vec_ref::round_q8_0 / round_q8_k multiply the codes back
// by their scale; the SIMD versions are tested against those) and the integer products of
// kernels/ggml_exact.h, which use the codes themselves.
#pragma once
#include <algorithm>
#include <cmath>

#include "core/fp16.h"
#include "quant/signed_absmax.h"

namespace imq::kernels {

// Q8_0 (ggml's AVX2 quantize_row_q8_0), 32 values: codes = round-half-even(x·127/amax);
// returns the block scale f16(amax/127) (0 for an all-zero block, whose codes are 0).
inline float q8_0_codes(const float* x, float* codes) {
  float amax = 0;
  for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float id = amax != 0.0f ? 127.f / amax : 0.0f;
  for (int j = 0; j < 32; ++j) codes[j] = std::nearbyint(x[j] * id);
  return f16_to_f32(f32_to_f16(amax / 127.f));
}

// Q8_K (quantize_row_q8_K_ref), 256 values: with max the first value of largest magnitude,
// codes = min(127, round-half-even(x·(−127/max))); returns d = 1/(−127/max) (0 for an all-zero
// block, whose codes are 0).
inline float q8_k_codes(const float* x, float* codes) {
  const float max = quant::signed_absmax(x, 256);
  if (max == 0.0f) {
    std::fill(codes, codes + 256, 0.0f);
    return 0.0f;
  }
  const float iscale = -127.f / max;
  for (int j = 0; j < 256; ++j) codes[j] = std::min(127.0f, std::nearbyint(iscale * x[j]));
  return 1.0f / iscale;
}

}  // namespace imq::kernels
