// The value of largest magnitude, sign kept: the first step of every symmetric scale search in
// ggml (legacy, K-quants, IQ4), which divides by it so that the extreme lands on the negative
// end of the code range.
#pragma once
#include <cmath>

namespace imq::quant {

// The x[i] of largest |x[i]| over i < n, the first one on ties; 0 when n == 0 or every value is
// 0. NaN never wins (`|x| > best` is false for it), which keeps ggml's result on odd input.
inline float signed_absmax(const float* x, int n) {
  float best = 0, max = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > best) {
      best = ax;
      max = x[i];
    }
  }
  return max;
}

}  // namespace imq::quant
