// IQ2_S: super-blocks of 256 weights, 2.5625 bits per weight (spec g.3): an f16 scale, then
// per 16-weight sub-block two 8-value groups, each a 10-bit index into a 1024-point grid
// (iq2s_grid.h) with 8 explicit sign bits, and a 4-bit scale per sub-block.
//
//   offset 0       2                34                 66              74            82
//          +-------+----------------+------------------+---------------+-------------+
//          | d f16 | qs[32]: low 8  | signs[32]: bit j | qh[8]: bits   | scales[8]:  |
//          |       | bits of group  | of byte g: value | 2(g%4).. of   | sub-block   |
//          |       | g's index      | 8g + j negative  | qh[g/4] = bits| ib in nibble|
//          |       |                |                  | 8..9 of it    | ib % 2      |
//          +-------+----------------+------------------+---------------+-------------+
//   x[8g + j] = d * (0.5 + s(g / 2)) * 0.25 * level(grid[idx(g)], j) * (signs[g] bit j ? -1 : 1)
//
// Quantization (llama-quantize's): magnitudes and signs per value, then trial_search with 19
// trial scales (step 0.1; off-grid points: the nearest shell of grid points only) re-rounding
// the groups that were off the grid; d = max sub-block scale / 31, stored times 0.9875.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "imq/error.h"
#include "quant/block_io.h"
#include "quant/grid.h"
#include "quant/iq2/codecs.h"
#include "quant/iq2/iq2s_grid.h"
#include "quant/lattice/lattice.h"
#include "quant/legacy/search.h"

namespace imq::quant {
namespace {

constexpr int kSuper = 256, kSub = 16, kNumSub = kSuper / kSub, kGroups = kSuper / 8;
constexpr int kMaxQ = 3;                 // levels per coordinate
constexpr float kGroupMaxEpsS = 1e-8f;   // ggml's GROUP_MAX_EPS_IQ2_S

struct BlockIq2S {
  uint16_t d;                   // f16 super-block scale
  uint8_t qs[kGroups];          // low 8 bits of the grid indices
  uint8_t signs[kGroups];       // one sign bit per value
  uint8_t qh[kGroups / 4];      // bits 8..9 of the grid indices, four groups per byte
  uint8_t scales[kNumSub / 2];  // 4-bit sub-block scales, two per byte
};
static_assert(sizeof(BlockIq2S) == 82, "IQ2_S block is 82 bytes");

void dequantize(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / kSuper; ++i) {
    const auto b = load_block<BlockIq2S>(src, i);
    const float d = f16_to_f32(b.d);
    float* y = dst + i * kSuper;
    for (int g = 0; g < kGroups; ++g) {
      const int ib = g / 2;
      const float db = d * (0.5f + float((b.scales[ib / 2] >> (4 * (ib % 2))) & 15)) * 0.25f;
      const uint16_t code = iq2::kSGrid[b.qs[g] | ((b.qh[g / 4] >> (2 * (g % 4))) & 3) << 8];
      for (int j = 0; j < 8; ++j) {
        const float q = float(iq2::kLevels[(code >> (2 * j)) & 3]);
        y[8 * g + j] = db * q * (b.signs[g] & (1u << j) ? -1.0f : 1.0f);
      }
    }
  }
}

// Sub-block ib: writes its two groups into b, returns its scale (0 for an all-(near-)zero
// sub-block, whose bytes stay 0).
float quantize_sub_block(const Lattice& lat, const float* xb, const float* weight, int ib, BlockIq2S& b) {
  float xval[kSub], waux[kSub];
  for (int i = 0; i < kSub; ++i) waux[i] = std::sqrt(weight[i]);
  uint8_t signs[2] = {};
  for (int i = 0; i < kSub; ++i) {
    xval[i] = xb[i] >= 0 ? xb[i] : -xb[i];
    if (xb[i] < 0) signs[i / 8] |= uint8_t(1u << (i % 8));
  }
  float max = xval[0];
  for (int i = 1; i < kSub; ++i) max = std::max(max, xval[i]);
  if (max < kGroupMaxEpsS) return 0.0f;
  int8_t L[kSub];
  float scale = trial_search(lat, {kMaxQ - 1, 9, 0.1f, false}, kSub, xval, weight, waux, max, L);
  if (scale < 0) {  // never expected; the stored scale is unsigned, so flip the signs instead
    scale = -scale;
    for (auto& s : signs) s = uint8_t(~s);
  }
  for (int k = 0; k < 2; ++k) {
    const int g = lat.find(lat.pack(L + 8 * k)), i8 = 2 * ib + k;
    if (g < 0) throw_error("IQ2_S: group {} left off the grid", k);
    b.qs[i8] = uint8_t(g & 255);
    b.qh[i8 / 4] |= uint8_t((g >> 8) << (2 * (i8 % 4)));
    b.signs[i8] = signs[k];
  }
  return scale;
}

BlockIq2S quantize_block(const Lattice& lat, const float* x, const float* qw) {
  float sumx2 = 0;
  for (int i = 0; i < kSuper; ++i) sumx2 += x[i] * x[i];
  const float sigma2 = 2 * sumx2 / kSuper;

  BlockIq2S b{};
  float scales[kNumSub], max_scale = 0;
  for (int ib = 0; ib < kNumSub; ++ib) {
    const float* xb = x + kSub * ib;
    float weight[kSub];
    if (qw) importance_weights(xb, qw + kSub * ib, sigma2, kSub, weight);
    else for (int i = 0; i < kSub; ++i) weight[i] = 0.25f * sigma2 + xb[i] * xb[i];
    scales[ib] = quantize_sub_block(lat, xb, weight, ib, b);
    max_scale = std::max(max_scale, scales[ib]);
  }
  if (max_scale == 0) return b;  // indices and signs as found, d and scales 0 (as ggml)
  const float d = max_scale / 31;
  b.d = f32_to_f16(d * 0.9875f);
  const float id = 1 / d;
  for (int ib = 0; ib < kNumSub; ++ib) {
    const int l = odd_scale_code(id, scales[ib], 15);
    b.scales[ib / 2] |= uint8_t(l << (4 * (ib % 2)));
  }
  return b;
}

// The block grid (quant/grid.h): fit is the search above; round_group codes the 8-value group
// at `first` (free signs) at its sub-block's stored scale. Level l decodes to kLevels[l] / 8 ≈
// 2l + 1 times 2 d (0.5 + s), the scale the search rounds at.
void grid_fit(const float* x, const float* qw, int /*variant*/, void* block, BlockGrid& /*g*/) {
  store_block(block, 0, quantize_block(iq2::s_lattice(), x, qw));
}

void grid_round_group(int first, const float* x, const float* w, void* block) {
  auto b = load_block<BlockIq2S>(block, 0);
  const int g = first / 8, ib = g / 2;
  const float scale = 2 * f16_to_f32(b.d) * (0.5f + float((b.scales[ib / 2] >> (4 * (ib % 2))) & 15));
  if (!(scale > 0)) return;  // an all-zero block keeps its codes
  const Lattice& lat = iq2::s_lattice();
  int8_t L[8];
  b.signs[g] = round_sign_group(lat, false, 8, x, w, scale, kMaxQ - 1, L);
  const int idx = lat.find(lat.pack(L));
  b.qs[g] = uint8_t(idx & 255);
  b.qh[g / 4] = uint8_t((b.qh[g / 4] & ~(3 << (2 * (g % 4)))) | (idx >> 8) << (2 * (g % 4)));
  store_block(block, 0, b);
}

constexpr GridOps kGrid{1, grid_fit, nullptr, 8, grid_round_group};

}  // namespace

const Lattice& iq2::s_lattice() {
  static const Lattice lattice(kSGrid, 8, 2, kMaxQ, 1);
  return lattice;
}

Codec iq2_s_codec() {
  Codec c{GgmlType::IQ2_S, "iq2_s", kSuper, sizeof(BlockIq2S), dequantize,
          quantize_lattice_rows<BlockIq2S, quantize_block, iq2::s_lattice>, ActFormat::Q8_K};
  c.grid = &kGrid;
  return c;
}

}  // namespace imq::quant
