#include "quant/iq4/iq4_search.h"

#include <cmath>

#include "quant/legacy/search.h"
#include "quant/signed_absmax.h"

namespace imq::quant::iq4 {

namespace {
constexpr int kNtry = 7;
}

int nearest_code(float v) {
  if (v <= float(kCodebook[0])) return 0;
  if (v >= float(kCodebook[15])) return 15;
  if (v != v) return 15;  // NaN: where ggml's binary search ends up
  // hi = the first entry above v (what a binary search finds), counted without branches.
  int hi = 0;
  for (int j = 0; j < 16; ++j) hi += v >= float(kCodebook[j]);
  return v - float(kCodebook[hi - 1]) < float(kCodebook[hi]) - v ? hi - 1 : hi;
}

void block_weights(const float* x, const float* qw, float sigma2, float* w) {
  if (qw) {
    for (int j = 0; j < kBlock; ++j) w[j] = qw[j] * std::sqrt(sigma2 + x[j] * x[j]);
  } else {
    for (int j = 0; j < kBlock; ++j) w[j] = x[j] * x[j];
  }
}

float search_block_scale(const float* x, const float* w) {
  const float max = signed_absmax(x, kBlock);
  if (std::fabs(max) < kGroupMaxEps) return 0.0f;

  // Weighted sums of the codes chosen for x * id.
  auto sums = [&](float id, float& sumqx, float& sumq2) {
    sumqx = 0;
    sumq2 = 0;
    for (int j = 0; j < kBlock; ++j) {
      const float q = float(kCodebook[nearest_code(id * x[j])]);
      sumqx += w[j] * q * x[j];
      sumq2 += w[j] * q * q;
    }
  };
  // Start from the scale that maps max onto the first codebook entry, then its LS refit.
  float d = -max / float(kCodebook[0]);
  float sumqx, sumq2;
  sums(1 / d, sumqx, sumq2);
  d = sumqx / sumq2;
  float best = d * sumqx;
  for (int t = -kNtry; t <= kNtry; ++t) {
    sums(float(t + kCodebook[0]) / max, sumqx, sumq2);
    if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
      d = sumqx / sumq2;
      best = d * sumqx;
    }
  }
  return d;
}

void assign_codes(const float* x, float inv_scale, uint8_t* codes) {
  for (int j = 0; j < kBlock; ++j) codes[j] = uint8_t(nearest_code(inv_scale * x[j]));
}

void pack_codes(const uint8_t* codes, uint8_t* qs) {
  for (int j = 0; j < kBlock / 2; ++j) qs[j] = uint8_t(codes[j] | (codes[j + kBlock / 2] << 4));
}

}  // namespace imq::quant::iq4
