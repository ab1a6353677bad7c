// Q3_HIFI outliers chosen by what they save (Selection::kSaving's proposal).
//
// Storing weight i exactly removes its own error, and it also takes i out of its sub-block's
// scale fit: a large weight that forced a coarse scale on 15 others frees them. Both effects
// are local to the 16-weight sub-block j = i / 16 while the super-block scale d stays put, so
// the saving of i is measured on that sub-block alone:
//
//   E_j(M) = min over the 64 scale codes l of  sum_{e in j, e not in M} w_e (x_e - s q_e)^2,
//            s = d * l,  q_e = clamp(round(x_e / s), -4, 3)           (Q3_K's decoding)
//   saving_i = E_j(M_j) - E_j(M_j + i) - w_i (x_i - f16(x_i))^2
//
// Greedy: take the largest saving, re-measure that sub-block's candidates, eight times; then
// one swap pass (each outlier, cheapest first, is put back and the best saving taken again;
// the local error never rises). The caller confirms the set with a real Q3_K fit.
// Cost: one pass of 63 scale codes x 16 weights per sub-block measures every candidate of that
// sub-block at once; 16 passes to start, one per step and two per swap after that.
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/fp16.h"
#include "quant/q3_hifi.h"

namespace imq::quant::q3_hifi {

namespace {

constexpr int kSub = 16;                   // weights per sub-block (Q3_K's)
constexpr int kNSub = kBlockSize / kSub;   // sub-blocks per block
constexpr float kRound = 12582912.0f;      // 1.5 * 2^23

// E_j(M) of one sub-block (x, w: 16 values; bit e of `skip`: weight e is an outlier), and in
// the same pass E_j(M + e) for every weight e not in M: for each scale code the error of each
// weight is computed once, and leaving e out subtracts its term.
float subblock_errors(const float* x, const float* w, uint32_t skip, float d, float* without) {
  float base = 0;  // l = 0: every weight decodes to 0
  float term[kSub];
  for (int e = 0; e < kSub; ++e) {
    term[e] = (skip >> e & 1) ? 0.0f : w[e] * x[e] * x[e];
    base += term[e];
  }
  for (int e = 0; e < kSub; ++e) without[e] = base - term[e];
  if (d == 0 || !std::isfinite(d)) return base;
  for (int l = -32; l < 32; ++l) {
    if (l == 0) continue;
    const float s = d * float(l), inv = 1.0f / s;
    float total = 0;
    for (int e = 0; e < kSub; ++e) {
      // Clamped to the codes first, then rounded to nearest (even) by the 1.5 * 2^23 trick:
      // the same code as clamp(nearbyint(x / s), -4, 3), without a libm call per weight.
      const float t = x[e] * inv, v = t < -4.0f ? -4.0f : t > 3.0f ? 3.0f : t;
      const float q = (v + kRound) - kRound;
      const float diff = x[e] - s * q;
      term[e] = (skip >> e & 1) ? 0.0f : w[e] * diff * diff;
      total += term[e];
    }
    base = std::min(base, total);
    for (int e = 0; e < kSub; ++e) without[e] = std::min(without[e], total - term[e]);
  }
  return base;
}

struct Greedy {
  const float* x;
  float w[kBlockSize];
  float own[kBlockSize];  // an outlier's own error, w_i (x_i - f16(x_i))^2
  float d;
  uint32_t skip[kNSub] = {};
  float base[kNSub];
  float saving[kBlockSize];
  bool member[kBlockSize] = {};

  void refresh(int j) {
    float without[kSub];
    base[j] = subblock_errors(x + j * kSub, w + j * kSub, skip[j], d, without);
    for (int e = 0; e < kSub; ++e) {
      const int i = j * kSub + e;
      saving[i] = member[i] ? -std::numeric_limits<float>::infinity() : base[j] - without[e] - own[i];
    }
  }
  void set(int i, bool in) {
    member[i] = in;
    if (in) skip[i / kSub] |= 1u << (i % kSub);
    else skip[i / kSub] &= ~(1u << (i % kSub));
    refresh(i / kSub);
  }
  // The non-member with the largest saving (ties: the lower position), made an outlier.
  int add_best() {
    int best = -1;
    for (int i = 0; i < kBlockSize; ++i)
      if (!member[i] && (best < 0 || saving[i] > saving[best])) best = i;
    set(best, true);
    return best;
  }
  // What putting member i back costs: its sub-block's error without i as an outlier, less
  // the sub-block's error now, less i's own error as an outlier.
  float loss(int i) {
    const int j = i / kSub;
    float without[kSub];
    return subblock_errors(x + j * kSub, w + j * kSub, skip[j] & ~(1u << (i % kSub)), d, without) -
           base[j] - own[i];
  }
};

}  // namespace

void saving_choice(const float* x, const float* importance, float d, uint8_t* out) {
  Greedy g;
  g.x = x;
  g.d = d;
  for (int i = 0; i < kBlockSize; ++i) {
    g.w[i] = importance ? importance[i] : 1.0f;
    const float e = f16_to_f32(f32_to_f16(std::clamp(x[i], -65504.0f, 65504.0f))) - x[i];
    g.own[i] = g.w[i] * e * e;
  }
  for (int j = 0; j < kNSub; ++j) g.refresh(j);
  int set[kOutliers];
  for (int k = 0; k < kOutliers; ++k) set[k] = g.add_best();
  // One swap pass, the cheapest outlier to give back first.
  float loss[kOutliers];
  for (int k = 0; k < kOutliers; ++k) loss[k] = g.loss(set[k]);
  bool tried[kOutliers] = {};
  for (int pass = 0; pass < kOutliers; ++pass) {
    int k = -1;
    for (int m = 0; m < kOutliers; ++m)
      if (!tried[m] && (k < 0 || loss[m] < loss[k])) k = m;
    tried[k] = true;
    g.set(set[k], false);
    set[k] = g.add_best();
  }
  int n = 0;
  for (int i = 0; i < kBlockSize; ++i)
    if (g.member[i]) out[n++] = uint8_t(i);
}

}  // namespace imq::quant::q3_hifi
