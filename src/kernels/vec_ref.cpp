// Scalar references of the vector primitives (the spec for kernels/vec_hwy.cpp).
#include <cmath>

#include "core/fp16.h"
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

}  // namespace imq::kernels::vec_ref
