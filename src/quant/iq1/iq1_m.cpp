// IQ1_M: super-blocks of 256 weights, 1.75 bits per weight (spec g.3): per 16-weight sub-block
// two 8-value groups, each an 11-bit index into the ternary grid (iq1s_grid.h) with its own
// shift sign, and a 3-bit scale; the f16 super-block scale is spread over the scales' top bits.
//
//   offset 0                         32                                48           56
//          +-------------------------+----------------------------------+------------+
//          | qs[32]: low 8 bits of   | qh[16], per sub-block ib: bits   | scales as  |
//          | group g's index         | 0..2 / 4..6 high index bits of   | 4 u16:     |
//          |                         | group 2ib / 2ib+1, bit 3 / 7     | 3 bits per |
//          |                         | their shift negative             | sub-block  |
//          +-------------------------+----------------------------------+------------+
//   u16 sc[4]: sub-block ib's s at bits 3(ib%4).. of sc[ib/4]; d = f16 from the top nibbles
//   sc[0] >> 12 | (sc[1] >> 12) << 4 | (sc[2] >> 12) << 8 | (sc[3] >> 12) << 12
//   x[8g + j] = d * (2s + 1) * (level(grid[idx(g)], j) - 1 + (shift bit of g ? -1/8 : 1/8))
//
// Quantization (llama-quantize's): per sub-block the exact best split of the sorted values into
// the three levels for the four shift combinations of its two halves (sums value by value),
// off-grid groups replaced by their nearest neighbour at the found scale (3 shells) and the
// scale re-fitted; then d is re-fitted over the whole super-block with the stored 3-bit scales,
// and stored times 1.1125.
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

constexpr int kSuper = 256, kSub = 16, kNumSub = kSuper / kSub, kHalf = kSub / 2;
constexpr float kGroupMaxEpsM = 1e-7f;  // ggml's GROUP_MAX_EPS_IQ1_M
// qh bits of the four shift combinations (group 0, group 1): ++, +-, -+, --.
constexpr uint8_t kShiftMask[4] = {0x00, 0x80, 0x08, 0x88};

struct BlockIq1M {
  uint8_t qs[kSuper / 8];      // low 8 bits of the grid indices
  uint8_t qh[kSuper / 16];     // high index bits and shift signs, two groups per byte
  uint8_t scales[kSuper / 32]; // four u16: 3-bit sub-block scales, f16 d in the top nibbles
};
static_assert(sizeof(BlockIq1M) == 56, "IQ1_M block is 56 bytes");

uint16_t scale_word(const BlockIq1M& b, int i) {
  uint16_t v;
  std::memcpy(&v, b.scales + 2 * i, 2);
  return v;
}

void dequantize(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / kSuper; ++i) {
    const auto b = load_block<BlockIq1M>(src, i);
    uint16_t sc[4];
    for (int k = 0; k < 4; ++k) sc[k] = scale_word(b, k);
    const uint16_t dbits = uint16_t((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000));
    const float d = f16_to_f32(dbits);
    float* y = dst + i * kSuper;
    for (int ib = 0; ib < kNumSub; ++ib) {
      const float dl = d * float(2 * ((sc[ib / 4] >> (3 * (ib % 4))) & 7) + 1);
      for (int k = 0; k < 2; ++k) {
        const uint8_t h = uint8_t(b.qh[ib] >> (4 * k));
        const uint16_t code = iq1::kGrid[b.qs[2 * ib + k] | (h & 7) << 8];
        const float delta = h & 0x08 ? -iq1::kDelta : iq1::kDelta;
        for (int j = 0; j < 8; ++j)
          y[16 * ib + 8 * k + j] = dl * (float(int((code >> (2 * j)) & 3) - 1) + delta);
      }
    }
  }
}

// The level values of group k (0, 1) under shift combination c (kShiftMask's order).
const float* group_values(int c, int k, const float* x_p, const float* x_m) {
  const bool plus = k == 0 ? c < 2 : c % 2 == 0;
  return plus ? x_p : x_m;
}

// The best three-way split of the sorted values for the four shift combinations. The sums are
// added value by value for every split, as the llama.cpp that made the reference files does
// (its later prefix-sum form rounds differently and changes a few blocks in 5 of the 40 IQ1_M
// reference tensors). Returns false when no
// split has a positive weight; else sets L, *scale (> 0 after ggml's sign flip) and *combo.
bool best_split(const float* xb, const float* w, const float x_p[3], const float x_m[3], int8_t* L,
                float* scale, int* combo) {
  int idx[kSub];
  std::iota(idx, idx + kSub, 0);
  std::stable_sort(idx, idx + kSub, [&](int a, int b) { return xb[a] < xb[b]; });  // glibc qsort
  float best = -FLT_MAX;
  int best1 = -1, best2 = -1;
  *combo = -1;
  for (int i1 = 0; i1 <= kSub; ++i1)
    for (int i2 = i1; i2 <= kSub; ++i2) {
      // Sums in sorted order, value by value: level 0 below i1, 1 below i2, 2 from there. The
      // four combinations give each half the + or - shift (combination k: first half + when
      // k < 2, second half + when k is even).
      float sumqx[4] = {}, sumq2[4] = {};
      for (int j = 0; j < kSub; ++j) {
        const int i = idx[j], level = j < i1 ? 0 : j < i2 ? 1 : 2;
        const bool first = i < kHalf;
        for (int k = 0; k < 4; ++k) {
          const bool plus = first ? k < 2 : k % 2 == 0;
          const float v = plus ? x_p[level] : x_m[level];
          sumqx[k] += w[i] * v * xb[i];
          sumq2[k] += w[i] * v * v;
        }
      }
      for (int k = 0; k < 4; ++k)
        if (sumq2[k] > 0 && sumqx[k] * sumqx[k] > best * sumq2[k]) {
          *scale = sumqx[k] / sumq2[k], best = *scale * sumqx[k];
          best1 = i1, best2 = i2, *combo = k;
        }
    }
  if (best1 < 0 || *combo < 0) return false;
  for (int j = 0; j < kSub; ++j) L[idx[j]] = int8_t(j < best1 ? 0 : j < best2 ? 1 : 2);
  if (*scale < 0) {
    for (int j = 0; j < kSub; ++j) L[j] = int8_t(2 - L[j]);
    *scale = -*scale, *combo = 3 - *combo;
  }
  return true;
}

void sub_block_weights(const float* xb, const float* qw, float sigma2, float* w) {
  if (qw) importance_weights(xb, qw, sigma2, kSub, w);
  else for (int i = 0; i < kSub; ++i) w[i] = xb[i] * xb[i];
}

BlockIq1M quantize_block(const Lattice& lat, const float* x, const float* qw) {
  const float x_p[3] = {-1 + iq1::kDelta, iq1::kDelta, 1 + iq1::kDelta};
  const float x_m[3] = {-1 - iq1::kDelta, -iq1::kDelta, 1 - iq1::kDelta};
  float sumx2 = 0;
  for (int i = 0; i < kSuper; ++i) sumx2 += x[i] * x[i];
  const float sigma2 = 2 * sumx2 / kSuper;

  BlockIq1M b{};
  float scales[kNumSub] = {}, max_scale = 0;
  int combos[kNumSub] = {};
  for (int ib = 0; ib < kNumSub; ++ib) {
    const float* xb = x + kSub * ib;
    float weight[kSub];
    sub_block_weights(xb, qw ? qw + kSub * ib : nullptr, sigma2, weight);
    float max = std::fabs(xb[0]);
    for (int i = 1; i < kSub; ++i) max = std::max(max, std::fabs(xb[i]));
    int8_t L[kSub];
    float scale = max;
    int combo;
    if (max < kGroupMaxEpsM || !best_split(xb, weight, x_p, x_m, L, &scale, &combo)) continue;
    int index[2];
    bool all_on_grid = true;
    for (int k = 0; k < 2; ++k) {
      const uint32_t u = lat.pack(L + 8 * k);
      index[k] = lat.find(u);
      if (index[k] < 0) {
        all_on_grid = false;
        index[k] = lat.nearest(u, xb + 8 * k, weight + 8 * k, scale, L + 8 * k, group_values(combo, k, x_p, x_m));
      }
    }
    if (!all_on_grid) {
      float sumqx = 0, sumq2 = 0;
      for (int k = 0; k < 2; ++k) {
        const float* xx = group_values(combo, k, x_p, x_m);
        for (int j = 0; j < 8; ++j) {
          const float w = weight[8 * k + j], q = xx[(lat.point(index[k])[j] - 1) / 2];
          sumqx += w * q * xb[8 * k + j];
          sumq2 += w * q * q;
        }
      }
      if (sumqx > 0 && sumq2 > 0) scale = sumqx / sumq2;
    }
    b.qs[2 * ib] = uint8_t(index[0] & 255);
    b.qs[2 * ib + 1] = uint8_t(index[1] & 255);
    b.qh[ib] = uint8_t((index[0] >> 8) | ((index[1] >> 8) << 4));
    if (!(scale >= 0)) throw_error("IQ1_M: negative sub-block scale {}", scale);
    scales[ib] = scale, combos[ib] = combo;
    max_scale = std::max(max_scale, scale);
  }
  if (max_scale == 0) return b;  // indices as found, scales and d 0 (as ggml)

  // Store the 3-bit scales, then re-fit d over every sub-block with them (the all-zero ones
  // included, as ggml does: their codes decode to grid point 0 at scale 1).
  uint16_t sc[4] = {};
  float d = max_scale / 15;
  const float id = 1 / d;
  float sumqx = 0, sumq2 = 0;
  for (int ib = 0; ib < kNumSub; ++ib) {
    const int l = odd_scale_code(id, scales[ib], 7);
    sc[ib / 4] = uint16_t(sc[ib / 4] | l << (3 * (ib % 4)));
    b.qh[ib] |= kShiftMask[combos[ib]];
    const float* xb = x + kSub * ib;
    float weight[kSub];
    sub_block_weights(xb, qw ? qw + kSub * ib : nullptr, sigma2, weight);
    for (int k = 0; k < 2; ++k) {
      const float* xx = group_values(combos[ib], k, x_p, x_m);
      const int g = b.qs[2 * ib + k] | ((b.qh[ib] >> (4 * k)) & 7) << 8;
      for (int j = 0; j < 8; ++j) {
        const float w = weight[8 * k + j];
        const float q = xx[(lat.point(g)[j] - 1) / 2] * float(2 * l + 1);
        sumqx += w * q * xb[8 * k + j];
        sumq2 += w * q * q;
      }
    }
  }
  if (sumq2 > 0) d = sumqx / sumq2;
  const uint16_t dbits = f32_to_f16(d * 1.1125f);  // ggml's fudge factor
  for (int k = 0; k < 4; ++k) sc[k] = uint16_t(sc[k] | (((dbits >> (4 * k)) & 15) << 12));
  std::memcpy(b.scales, sc, sizeof sc);
  return b;
}

// The block grid (quant/grid.h): fit is the search above; round_group codes the 8-value group
// at `first` at its sub-block's stored scale, with whichever shift sign fits it better (the
// shift is the group's own in IQ1_M).
void grid_fit(const float* x, const float* qw, int /*variant*/, void* block, BlockGrid& /*g*/) {
  store_block(block, 0, quantize_block(iq1::lattice(), x, qw));
}

void grid_round_group(int first, const float* x, const float* w, void* block) {
  auto b = load_block<BlockIq1M>(block, 0);
  uint16_t sc[4];
  for (int k = 0; k < 4; ++k) sc[k] = scale_word(b, k);
  const uint16_t dbits = uint16_t((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000));
  const int g = first / 8, ib = g / 2, k = g % 2;
  const float dl = f16_to_f32(dbits) * float(2 * ((sc[ib / 4] >> (3 * (ib % 4))) & 7) + 1);
  if (!(dl > 0)) return;  // an all-zero block keeps its codes
  int best_idx = 0, best_shift = 0;
  float best_err = INFINITY;
  for (int shift = 0; shift < 2; ++shift) {  // 0: +kDelta, 1: -kDelta (bit 3 of the nibble)
    const float delta = shift ? -iq1::kDelta : iq1::kDelta;
    const float value[3] = {-1 + delta, delta, 1 + delta};
    int8_t L[8];
    float err;
    const int idx = round_valued_group(iq1::lattice(), x, w, dl, value, 3, L, &err);
    if (err < best_err) best_err = err, best_idx = idx, best_shift = shift;
  }
  b.qs[g] = uint8_t(best_idx & 255);
  const int nibble = (best_idx >> 8) | best_shift << 3;
  b.qh[ib] = uint8_t((b.qh[ib] & ~(15 << (4 * k))) | nibble << (4 * k));
  store_block(block, 0, b);
}

constexpr GridOps kGrid{1, grid_fit, nullptr, 8, grid_round_group};

}  // namespace

Codec iq1_m_codec() {
  Codec c{GgmlType::IQ1_M, "iq1_m", kSuper, sizeof(BlockIq1M), dequantize,
          quantize_lattice_rows<BlockIq1M, quantize_block, iq1::lattice>, ActFormat::Q8_K};
  c.grid = &kGrid;
  return c;
}

}  // namespace imq::quant
