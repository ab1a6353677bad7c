// Scalar references of the vector primitives (the spec for kernels/vec_hwy.cpp).
#include <algorithm>
#include <cmath>

#include "core/fp16.h"
#include "kernels/act_codes.h"
#include "kernels/vec.h"

namespace imq::kernels::vec_ref {

float dot_f32(const float* a, const float* b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += double(a[i]) * double(b[i]);
  return float(s);
}

float dot_f16(const uint16_t* a, const float* b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += double(f16_to_f32(a[i])) * double(b[i]);
  return float(s);
}

float dot_bf16(const uint16_t* a, const float* b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += double(bf16_to_f32(a[i])) * double(b[i]);
  return float(s);
}

double exp_sub_sum(float* x, int64_t n, float m) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += (x[i] = std::exp(x[i] - m));
  return s;
}

void add_squares(const float* x, int64_t n_rows, int64_t ne0, double* s) {
  for (int64_t r = 0; r < n_rows; ++r)
    for (int64_t j = 0; j < ne0; ++j) s[j] += double(x[r * ne0 + j]) * double(x[r * ne0 + j]);
}

// std::nearbyint rounds half to even in the default rounding mode, as the SIMD round
// instruction and ggml's nearest_int do.
void round_q8_0(const float* x, int64_t n, float* out) {
  float codes[32];
  for (int64_t b = 0; b < n; b += 32) {
    const float d = q8_0_codes(x + b, codes);
    for (int64_t j = 0; j < 32; ++j) out[b + j] = d * codes[j];
  }
}

void round_q8_k(const float* x, int64_t n, float* out) {
  float codes[256];
  for (int64_t b = 0; b < n; b += 256) {
    const float d = q8_k_codes(x + b, codes);
    for (int64_t j = 0; j < 256; ++j) out[b + j] = d * codes[j];
  }
}

void round_f16(const float* x, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = f16_to_f32(f32_to_f16(x[i]));
}

}  // namespace imq::kernels::vec_ref
