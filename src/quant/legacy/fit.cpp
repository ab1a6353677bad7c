#include "quant/legacy/fit.h"

#include <algorithm>
#include <cfloat>
#include <cmath>

#include "quant/signed_absmax.h"

namespace imq::quant {

float plain_sym_fit(const float* x, int n, int nhalf, uint8_t* q) {
  const float max = signed_absmax(x, n);
  const float d = max / -float(nhalf);
  const float id = d != 0 ? 1.0f / d : 0.0f;
  const float bias = float(nhalf) + 0.5f;  // 8.5f, 16.5f: exact
  for (int j = 0; j < n; ++j) q[j] = uint8_t(std::min(2 * nhalf - 1, int(int8_t(int(x[j] * id + bias)))));
  return d;
}

float plain_asym_fit(const float* x, int n, int qmax, uint8_t* q, float* min_out) {
  float min = FLT_MAX, max = -FLT_MAX;
  for (int j = 0; j < n; ++j) {
    if (x[j] < min) min = x[j];
    if (x[j] > max) max = x[j];
  }
  const float d = (max - min) / float(qmax);
  const float id = d != 0 ? 1.0f / d : 0.0f;
  for (int j = 0; j < n; ++j) q[j] = uint8_t(std::min(qmax, int(int8_t(int((x[j] - min) * id + 0.5f)))));
  *min_out = min;
  return d;
}

float importance_sym_fit(const float* x, const float* qw, float sigma2, int n, int nhalf, uint8_t* q) {
  float w[256];
  importance_weights(x, qw, sigma2, n, w);
  return sym_scale_search(n, nhalf, x, w, q);
}

float importance_asym_fit(const float* x, const float* qw, float sigma2, int n, int qmax, uint8_t* q,
                          float* min) {
  float w[256];
  importance_weights(x, qw, sigma2, n, w);
  float neg_min = 0;
  const float d = asym_scale_search_im(n, qmax, x, w, q, &neg_min, -0.9f, 0.05f, 36, false);
  *min = -neg_min;
  return d;
}

}  // namespace imq::quant
