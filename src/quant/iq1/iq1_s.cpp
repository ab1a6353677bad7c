// IQ1_S: super-blocks of 256 weights, 1.5625 bits per weight (spec g.3): an f16 scale, then per
// 32-weight sub-block four 8-value groups, each an 11-bit index into the 2048-point ternary grid
// (iq1s_grid.h), a 3-bit scale and the sign of a shift shared by the sub-block.
//
//   offset 0       2                          34                                    50
//          +-------+--------------------------+--------------------------------------+
//          | d f16 | qs[32]: low 8 bits of    | qh[8] u16 per sub-block ib: bits 3l.. |
//          |       | group 4ib + l's index    | 3l+2 high index bits of group l,      |
//          |       |                          | 12..14 s, 15: shift negative          |
//          +-------+--------------------------+--------------------------------------+
//   x[32ib + 8l + j] = d * (2s + 1) * (level(grid[idx], j) - 1 + (bit 15 ? -1/8 : 1/8))
//
// Quantization (llama-quantize's, importance required there): per sub-block the exact best
// split of the sorted values into the three levels, for both shifts (prefix sums over the
// sorted order); groups whose levels are off the grid take the neighbour nearest at the found
// scale (3 shells), after which the scale is re-fitted. d = max sub-block scale / 15, stored
// times 1.125.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <numeric>

#include "core/fp16.h"
#include "imq/error.h"
#include "quant/block_io.h"
#include "quant/grid.h"
#include "quant/iq1/codecs.h"
#include "quant/iq1/iq1s_grid.h"
#include "quant/lattice/lattice.h"
#include "quant/legacy/search.h"

namespace imq::quant {
namespace {

constexpr int kSuper = 256, kSub = 32, kNumSub = kSuper / kSub;
constexpr float kGroupMaxEpsS = 1e-12f;  // ggml's GROUP_MAX_EPS_IQ1_S

struct BlockIq1S {
  uint16_t d;               // f16 super-block scale
  uint8_t qs[kSuper / 8];   // low 8 bits of the grid indices
  uint16_t qh[kNumSub];     // high index bits, scale, shift sign
};
static_assert(sizeof(BlockIq1S) == 50, "IQ1_S block is 50 bytes");

void dequantize(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / kSuper; ++i) {
    const auto b = load_block<BlockIq1S>(src, i);
    const float d = f16_to_f32(b.d);
    float* y = dst + i * kSuper;
    for (int ib = 0; ib < kNumSub; ++ib) {
      const float dl = d * float(2 * ((b.qh[ib] >> 12) & 7) + 1);
      const float delta = b.qh[ib] & 0x8000 ? -iq1::kDelta : iq1::kDelta;
      for (int l = 0; l < 4; ++l) {
        const uint16_t code = iq1::kGrid[b.qs[4 * ib + l] | ((b.qh[ib] >> (3 * l)) & 7) << 8];
        for (int j = 0; j < 8; ++j)
          y[32 * ib + 8 * l + j] = dl * (float(int((code >> (2 * j)) & 3) - 1) + delta);
      }
    }
  }
}

// The levels 0..2 of a sub-block's values for the best three-way split of the values in sorted
// order, either shift (x_p: levels at -1 + 1/8, 1/8, 1 + 1/8; x_m: the negated shift). Returns
// false when no split has a positive weight; else sets L, *scale (> 0 after the sign flip that
// ggml applies) and *shift (+1 / -1).
bool best_split(const float* xb, const float* w, const float x_p[3], const float x_m[3], int8_t* L,
                float* scale, int* shift) {
  int idx[kSub];
  std::iota(idx, idx + kSub, 0);
  // ggml sorts (value, index) pairs with qsort by value: glibc's merge sort, stable on ties.
  std::stable_sort(idx, idx + kSub, [&](int a, int b) { return xb[a] < xb[b]; });
  float sumx[kSub + 1], sumw[kSub + 1];
  sumx[0] = sumw[0] = 0;
  for (int j = 0; j < kSub; ++j) {
    sumx[j + 1] = sumx[j] + w[idx[j]] * xb[idx[j]];
    sumw[j + 1] = sumw[j] + w[idx[j]];
  }
  float best = -FLT_MAX;
  int best1 = -1, best2 = -1;
  *shift = 0;
  for (int i1 = 0; i1 <= kSub; ++i1)
    for (int i2 = i1; i2 <= kSub; ++i2)
      for (int s = 1; s >= -1; s -= 2) {
        const float* v = s == 1 ? x_p : x_m;
        const float sumqx = (sumx[i1] - sumx[0]) * v[0] + (sumx[i2] - sumx[i1]) * v[1] + (sumx[kSub] - sumx[i2]) * v[2];
        const float sumq2 = (sumw[i1] - sumw[0]) * v[0] * v[0] + (sumw[i2] - sumw[i1]) * v[1] * v[1] +
                            (sumw[kSub] - sumw[i2]) * v[2] * v[2];
        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
          *scale = sumqx / sumq2, best = *scale * sumqx;
          best1 = i1, best2 = i2, *shift = s;
        }
      }
  if (best1 < 0 || *shift == 0) return false;
  for (int j = 0; j < kSub; ++j) L[idx[j]] = int8_t(j < best1 ? 0 : j < best2 ? 1 : 2);
  if (*scale < 0) {
    for (int j = 0; j < kSub; ++j) L[j] = int8_t(2 - L[j]);
    *scale = -*scale, *shift = -*shift;
  }
  return true;
}

BlockIq1S quantize_block(const Lattice& lat, const float* x, const float* qw) {
  const float x_p[3] = {-1 + iq1::kDelta, iq1::kDelta, 1 + iq1::kDelta};
  const float x_m[3] = {-1 - iq1::kDelta, -iq1::kDelta, 1 - iq1::kDelta};
  float sumx2 = 0;
  for (int i = 0; i < kSuper; ++i) sumx2 += x[i] * x[i];
  const float sigma2 = 2 * sumx2 / kSuper;

  BlockIq1S b{};
  float scales[kNumSub] = {}, max_scale = 0;
  int shifts[kNumSub];
  for (int ib = 0; ib < kNumSub; ++ib) {
    const float* xb = x + kSub * ib;
    float weight[kSub];
    // Without importance (llama-quantize refuses that): IQ1_M's weights x^2.
    if (qw) importance_weights(xb, qw + kSub * ib, sigma2, kSub, weight);
    else for (int i = 0; i < kSub; ++i) weight[i] = xb[i] * xb[i];
    float max = std::fabs(xb[0]);
    for (int i = 1; i < kSub; ++i) max = std::max(max, std::fabs(xb[i]));
    shifts[ib] = 1;
    int8_t L[kSub];
    float scale = max;
    int shift;
    if (max < kGroupMaxEpsS || !best_split(xb, weight, x_p, x_m, L, &scale, &shift)) continue;
    const float* xx = shift == 1 ? x_p : x_m;
    int index[4];
    bool all_on_grid = true;
    for (int k = 0; k < 4; ++k) {
      const uint32_t u = lat.pack(L + 8 * k);
      index[k] = lat.find(u);
      if (index[k] < 0) {
        all_on_grid = false;
        index[k] = lat.nearest(u, xb + 8 * k, weight + 8 * k, scale, L + 8 * k, xx);
      }
    }
    if (!all_on_grid) {
      float sumqx = 0, sumq2 = 0;
      for (int k = 0; k < 4; ++k)
        for (int j = 0; j < 8; ++j) {
          const float w = weight[8 * k + j], q = xx[(lat.point(index[k])[j] - 1) / 2];
          sumqx += w * q * xb[8 * k + j];
          sumq2 += w * q * q;
        }
      if (sumqx > 0 && sumq2 > 0) scale = sumqx / sumq2;
    }
    uint16_t h = 0;
    for (int k = 0; k < 4; ++k) {
      b.qs[4 * ib + k] = uint8_t(index[k] & 255);
      h = uint16_t(h | (index[k] >> 8) << (3 * k));
    }
    b.qh[ib] = h;
    if (!(scale >= 0)) throw_error("IQ1_S: negative sub-block scale {}", scale);
    scales[ib] = scale, shifts[ib] = shift;
    max_scale = std::max(max_scale, scale);
  }
  if (max_scale == 0) return b;  // indices as found, d and scales 0 (as ggml)
  const float d = max_scale / 15;
  b.d = f32_to_f16(d * 1.125f);  // ggml's fudge factor
  const float id = 1 / d;
  for (int ib = 0; ib < kNumSub; ++ib) {
    int l = odd_scale_code(id, scales[ib], 7);
    if (shifts[ib] == -1) l |= 8;
    b.qh[ib] = uint16_t(b.qh[ib] | l << 12);
  }
  return b;
}

// The block grid (quant/grid.h): fit is the search above; round_group codes the 8-value group
// at `first` at its sub-block's stored scale and shift.
void grid_fit(const float* x, const float* qw, int /*variant*/, void* block, BlockGrid& /*g*/) {
  store_block(block, 0, quantize_block(iq1::lattice(), x, qw));
}

void grid_round_group(int first, const float* x, const float* w, void* block) {
  auto b = load_block<BlockIq1S>(block, 0);
  const int g = first / 8, ib = g / 4, l = g % 4;
  const float dl = f16_to_f32(b.d) * float(2 * ((b.qh[ib] >> 12) & 7) + 1);
  if (!(dl > 0)) return;  // an all-zero block keeps its codes
  const float delta = b.qh[ib] & 0x8000 ? -iq1::kDelta : iq1::kDelta;
  const float value[3] = {-1 + delta, delta, 1 + delta};
  int8_t L[8];
  float err;
  const int idx = round_valued_group(iq1::lattice(), x, w, dl, value, 3, L, &err);
  b.qs[g] = uint8_t(idx & 255);
  b.qh[ib] = uint16_t((b.qh[ib] & ~(7 << (3 * l))) | (idx >> 8) << (3 * l));
  store_block(block, 0, b);
}

constexpr GridOps kGrid{1, grid_fit, nullptr, 8, grid_round_group};

}  // namespace

const Lattice& iq1::lattice() {
  static const Lattice lattice(kGrid, 8, 2, 3, 3);
  return lattice;
}

Codec iq1_s_codec() {
  Codec c{GgmlType::IQ1_S, "iq1_s", kSuper, sizeof(BlockIq1S), dequantize,
          quantize_lattice_rows<BlockIq1S, quantize_block, iq1::lattice>, ActFormat::Q8_K};
  c.grid = &kGrid;
  return c;
}

}  // namespace imq::quant
