// Q3_HIFI outlier selection: which 8 weights of a block are stored exactly.
//
// The fork this type comes from keeps the 8 largest |x_i| * w_i. That ignores what the rest
// of the block costs afterwards: removing a large weight lets Q3_K shrink its sub-block scale,
// but a weight that Q3_K would already have represented well is a wasted outlier, and a
// middling weight that falls badly between two 3-bit levels is not chosen at all.
//
// The joint search measures the quantity that matters, the block's importance-weighted error
//     E(S) = sum_{i not in S} w_i (x_i - y_i)^2 + sum_{i in S} w_i (x_i - f16(x_i))^2
// (w = imatrix value of the column, or 1). It starts from the better of two candidates:
//   A  the magnitude choice, with S zeroed and given weight 0 for the Q3_K fit of the rest
//      (they are stored exactly, so the fit should not spend precision on them);
//   B  Q3_K of the whole block, S = the 8 positions where it errs most (E(B) is Q3_K's error
//      minus those terms, so Q3_HIFI is never worse than Q3_K on the same block);
//   C  with importance only: the 8 largest |x_i|, whatever w_i. Q3_K's scale search is
//      anchored on the largest |x| of a sub-block, so a huge weight of a column nobody reads
//      still drags its sub-block's scale up; storing it exactly frees the scale (on the codec
//      test's heavy-tailed data this candidate halves the joint search's error).
// Then it proposes new sets from the current fit, scoring every position by
//   gain_i  (i not in S) = w_i (x_i - y_i)^2            error removed if i became an outlier
//   cost_i  (i in S)     = w_i (x_i - q(x_i))^2         error of i under the current Q3_K
//                                                       scales (clamped to the 3-bit range)
// (the 8 highest scores, then single swaps), and keeps a proposal only when a fresh Q3_K fit
// with the new S zeroed confirms that E went down. At most 3 + kMaxProposals + kMaxSwaps
// Q3_K fits per block; the result is never worse than A, B or C.
//
// kSaving (the default) adds one candidate: the set that saving_choice (q3_hifi_saving.cpp)
// builds from what each weight's removal saves under the best fit's super-block scale, kept
// when a Q3_K fit confirms that E went down. (Re-fitting the Q3_K part of the chosen set to E
// itself with k_improve lowered E further but not the KL divergence: dict8-spm4k layers-only
// Q3_HIFI_M 0.009899 with it, 0.009839 without; bench/README.md.)
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "core/fp16.h"
#include "quant/q3_hifi.h"

namespace imq::quant::q3_hifi {

namespace {

constexpr int kN = kBlockSize;
constexpr int kMaxProposals = 3;  // pooled re-selections after the two starting candidates
constexpr int kMaxSwaps = 3;      // single swaps tried after the pooled proposals stop paying

using Set = uint8_t[kOutliers];  // ascending positions

// A candidate outlier set with its Q3_K fit.
struct Fit {
  Block block;
  float y[kN];   // the block's dequantized weights
  double error;  // E(S)
};

float weight(const float* importance, int i) { return importance ? importance[i] : 1.0f; }

// The f16 an outlier is stored as; finite even for |x| beyond f16's range.
uint16_t outlier_f16(float x) { return f32_to_f16(std::clamp(x, -65504.0f, 65504.0f)); }

// The 8 positions with the largest scores, ties to the lower position, sorted ascending.
void top_positions(const float* score, uint8_t* out) {
  int order[kN];
  std::iota(order, order + kN, 0);
  std::partial_sort(order, order + kOutliers, order + kN, [&](int a, int b) {
    return score[a] > score[b] || (score[a] == score[b] && a < b);
  });
  std::sort(order, order + kOutliers);
  for (int k = 0; k < kOutliers; ++k) out[k] = uint8_t(order[k]);
}

void magnitude_choice(const float* x, const float* importance, uint8_t* out) {
  float mag[kN];
  for (int i = 0; i < kN; ++i) mag[i] = std::fabs(x[i]) * weight(importance, i);
  top_positions(mag, out);
}

// The 8 largest |x_i|, whatever their importance.
void largest_choice(const float* x, uint8_t* out) { magnitude_choice(x, nullptr, out); }

void run_fit(const float* x, const float* importance, const uint8_t* set, Fit& f) {
  float xz[kN], wz[kN];
  std::memcpy(xz, x, sizeof xz);
  if (importance) std::memcpy(wz, importance, sizeof wz);
  for (int k = 0; k < kOutliers; ++k) {
    xz[set[k]] = 0;
    wz[set[k]] = 0;
    f.block.idx[k] = set[k];
    f.block.val[k] = outlier_f16(x[set[k]]);
  }
  q3k::quantize(xz, importance ? wz : nullptr, f.block.q3_k);
  dequantize_block(f.block, f.y);
  f.error = weighted_error(x, f.y, importance, kN);
}

// Candidate B: Q3_K of the whole block (nothing zeroed), outliers where it errs most. Its
// error is Q3_K's minus those positions' terms: never above the plain Q3_K block.
void run_fit_whole(const float* x, const float* importance, Fit& f) {
  q3k::quantize(x, importance, f.block.q3_k);
  q3k::dequantize(f.block.q3_k, f.y);
  float gain[kN];
  for (int i = 0; i < kN; ++i) {
    const float e = f.y[i] - x[i];
    gain[i] = weight(importance, i) * e * e;
  }
  top_positions(gain, f.block.idx);
  for (int k = 0; k < kOutliers; ++k) f.block.val[k] = outlier_f16(x[f.block.idx[k]]);
  dequantize_block(f.block, f.y);
  f.error = weighted_error(x, f.y, importance, kN);
}

// Score of every position under fit f: gain for non-members, cost for members.
void scores(const float* x, const float* importance, const Fit& f, float* score) {
  float ds[16];
  q3k::subblock_scales(f.block.q3_k, ds);
  for (int i = 0; i < kN; ++i) {
    const float e = f.y[i] - x[i];
    score[i] = weight(importance, i) * e * e;
  }
  for (int k = 0; k < kOutliers; ++k) {
    const int i = f.block.idx[k];
    const float s = ds[i / 16];
    const float q = s == 0 ? 0.0f : s * std::clamp(std::nearbyint(x[i] / s), -4.0f, 3.0f);
    const float e = q - x[i];
    score[i] = weight(importance, i) * e * e;
  }
}

bool same_set(const uint8_t* a, const uint8_t* b) { return std::equal(a, a + kOutliers, b); }

bool is_member(const uint8_t* set, int i) {
  return std::find(set, set + kOutliers, uint8_t(i)) != set + kOutliers;
}

}  // namespace

double weighted_error(const float* x, const float* y, const float* importance, int64_t n) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double e = double(x[i]) - double(y[i]);
    sum += double(importance ? importance[i] : 1.0f) * e * e;
  }
  return sum;
}

BlockResult quantize_block(const float* x, const float* importance, Selection sel, Block& out) {
  Fit best, cand;
  Set set;
  magnitude_choice(x, importance, set);
  run_fit(x, importance, set, best);
  int fits = 1;

  if (sel != Selection::kMagnitude) {
    run_fit_whole(x, importance, cand);
    ++fits;
    if (cand.error < best.error) best = cand;
    if (importance) {
      Set large;
      largest_choice(x, large);
      if (!same_set(large, set)) {
        run_fit(x, importance, large, cand);
        ++fits;
        if (cand.error < best.error) best = cand;
      }
    }
    float score[kN];
    for (int p = 0; p < kMaxProposals; ++p) {
      scores(x, importance, best, score);
      Set next;
      top_positions(score, next);
      if (same_set(next, best.block.idx)) break;
      run_fit(x, importance, next, cand);
      ++fits;
      if (!(cand.error < best.error)) break;
      best = cand;
    }
    // Single swaps: the non-member with the largest gain in, for the members with the
    // smallest costs in turn, while the gain exceeds the cost; the first that pays is kept.
    scores(x, importance, best, score);
    int members[kOutliers];
    for (int k = 0; k < kOutliers; ++k) members[k] = best.block.idx[k];
    std::sort(members, members + kOutliers, [&](int a, int b) {
      return score[a] < score[b] || (score[a] == score[b] && a < b);
    });
    int j = -1;
    for (int i = 0; i < kN; ++i)
      if (!is_member(best.block.idx, i) && (j < 0 || score[i] > score[j])) j = i;
    for (int m = 0; m < kMaxSwaps && j >= 0 && score[j] > score[members[m]]; ++m) {
      Set next;
      std::copy(best.block.idx, best.block.idx + kOutliers, next);
      *std::find(next, next + kOutliers, uint8_t(members[m])) = uint8_t(j);
      std::sort(next, next + kOutliers);
      run_fit(x, importance, next, cand);
      ++fits;
      if (cand.error < best.error) {
        best = cand;
        break;
      }
    }
  }
  if (sel == Selection::kSaving) {
    Set next;
    saving_choice(x, importance, q3k::super_scale(best.block.q3_k), next);
    if (!same_set(next, best.block.idx)) {
      run_fit(x, importance, next, cand);
      ++fits;
      if (cand.error < best.error) best = cand;
    }
  }
  out = best.block;
  return {best.error, fits};
}

}  // namespace imq::quant::q3_hifi
