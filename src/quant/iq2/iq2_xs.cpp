// IQ2_XS: super-blocks of 256 weights, 2.3125 bits per weight (spec g.3): an f16 scale, then
// per 16-weight sub-block two 8-value groups, each a 9-bit index into a 512-point grid
// (iq2xs_grid.h) with 7 sign bits, and a 4-bit scale per sub-block.
//
//   offset 0        2                                          66                74
//          +--------+------------------------------------------+-----------------+
//          | d  f16 | qs[32] u16: group g = index | signs << 9 | scales[8]: sub- |
//          |        | (groups 2ib, 2ib+1 form sub-block ib)    | block ib's in   |
//          |        |                                          | nibble ib % 2   |
//          +--------+------------------------------------------+-----------------+
//   x[8g + j] = d * (0.5 + s(g / 2)) * 0.25 * level(grid[qs[g] & 511], j)
//               * (sign_byte(qs[g] >> 9) bit j ? -1 : 1)
//
// Quantization (llama-quantize's, importance required there): signs folded into magnitudes
// (fold_signs), then trial_search with 19 trial scales (step 0.1) re-rounding only the groups
// that were off the grid; d = max sub-block scale / 31.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "imq/error.h"
#include "quant/block_io.h"
#include "quant/grid.h"
#include "quant/iq2/codecs.h"
#include "quant/iq2/iq2xs_grid.h"
#include "quant/lattice/lattice.h"
#include "quant/legacy/search.h"

namespace imq::quant {
namespace {

constexpr int kSuper = 256, kSub = 16, kNumSub = kSuper / kSub;
constexpr int kMaxQ = 3;  // levels per coordinate

struct BlockIq2Xs {
  uint16_t d;                   // f16 super-block scale
  uint16_t qs[kSuper / 8];      // per 8-value group: 9-bit grid index, 7 sign bits
  uint8_t scales[kNumSub / 2];  // 4-bit sub-block scales, two per byte
};
static_assert(sizeof(BlockIq2Xs) == 74, "IQ2_XS block is 74 bytes");

void dequantize(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / kSuper; ++i) {
    const auto b = load_block<BlockIq2Xs>(src, i);
    const float d = f16_to_f32(b.d);
    float* y = dst + i * kSuper;
    for (int g = 0; g < kSuper / 8; ++g) {
      const int ib = g / 2;
      const float db = d * (0.5f + float((b.scales[ib / 2] >> (4 * (ib % 2))) & 15)) * 0.25f;
      const uint16_t code = iq2::kXsGrid[b.qs[g] & 511];
      const uint8_t signs = sign_byte(b.qs[g] >> 9);
      for (int j = 0; j < 8; ++j) {
        const float q = float(iq2::kLevels[(code >> (2 * j)) & 3]);
        y[8 * g + j] = db * q * (signs & (1u << j) ? -1.0f : 1.0f);
      }
    }
  }
}

// One sub-block: writes its two group words, returns its scale (0 for an all-(near-)zero
// sub-block, whose words stay 0).
float quantize_sub_block(const Lattice& lat, const float* xb, const float* weight, uint16_t* q2) {
  float xval[kSub], waux[kSub];
  for (int i = 0; i < kSub; ++i) waux[i] = std::sqrt(weight[i]);
  uint8_t signs[2];
  for (int k = 0; k < 2; ++k) signs[k] = fold_signs(xb + 8 * k, weight + 8 * k, xval + 8 * k);
  float max = xval[0];
  for (int i = 1; i < kSub; ++i) max = std::max(max, xval[i]);
  if (max < kGroupMaxEps) return 0.0f;
  int8_t L[kSub];
  float scale = trial_search(lat, {kMaxQ - 1, 9, 0.1f, false}, kSub, xval, weight, waux, max, L);
  if (scale < 0) {  // never expected; the stored scale is unsigned, so flip the signs instead
    scale = -scale;
    for (auto& s : signs) s = uint8_t(~s & 127);
  }
  for (int k = 0; k < 2; ++k) {
    const int g = lat.find(lat.pack(L + 8 * k));
    if (g < 0) throw_error("IQ2_XS: group {} left off the grid", k);
    q2[k] = uint16_t(g | (signs[k] << 9));
  }
  return scale;
}

BlockIq2Xs quantize_block(const Lattice& lat, const float* x, const float* qw) {
  float sumx2 = 0;
  for (int i = 0; i < kSuper; ++i) sumx2 += x[i] * x[i];
  const float sigma2 = sumx2 / kSuper;

  BlockIq2Xs b{};
  float scales[kNumSub], max_scale = 0;
  for (int ib = 0; ib < kNumSub; ++ib) {
    const float* xb = x + kSub * ib;
    float weight[kSub];
    // Without importance (llama-quantize refuses that): ggml's earlier weights.
    if (qw) importance_weights(xb, qw + kSub * ib, sigma2, kSub, weight);
    else for (int i = 0; i < kSub; ++i) weight[i] = 0.25f * sigma2 + xb[i] * xb[i];
    scales[ib] = quantize_sub_block(lat, xb, weight, b.qs + 2 * ib);
    max_scale = std::max(max_scale, scales[ib]);
  }
  if (max_scale == 0) return BlockIq2Xs{};
  const float d = max_scale / 31;
  b.d = f32_to_f16(d);
  const float id = 1 / d;
  for (int ib = 0; ib < kNumSub; ++ib) {
    const int l = odd_scale_code(id, scales[ib], 15);
    b.scales[ib / 2] |= uint8_t(l << (4 * (ib % 2)));
  }
  return b;
}

// The block grid (quant/grid.h): fit is the search above; round_group codes the 8-value group
// at `first` at its sub-block's stored scale. Level l decodes to kLevels[l] / 8 ≈ 2l + 1 times
// 2 d (0.5 + s), the scale the search rounds at.
void grid_fit(const float* x, const float* qw, int /*variant*/, void* block, BlockGrid& /*g*/) {
  store_block(block, 0, quantize_block(iq2::xs_lattice(), x, qw));
}

void grid_round_group(int first, const float* x, const float* w, void* block) {
  auto b = load_block<BlockIq2Xs>(block, 0);
  const int g = first / 8, ib = g / 2;
  const float scale = 2 * f16_to_f32(b.d) * (0.5f + float((b.scales[ib / 2] >> (4 * (ib % 2))) & 15));
  if (!(scale > 0)) return;  // an all-zero block keeps its codes
  const Lattice& lat = iq2::xs_lattice();
  int8_t L[8];
  const int signs = round_sign_group(lat, true, 8, x, w, scale, kMaxQ - 1, L);
  b.qs[g] = uint16_t(lat.find(lat.pack(L)) | signs << 9);
  store_block(block, 0, b);
}

constexpr GridOps kGrid{1, grid_fit, nullptr, 8, grid_round_group};

}  // namespace

const Lattice& iq2::xs_lattice() {
  static const Lattice lattice(kXsGrid, 8, 2, kMaxQ, 2);
  return lattice;
}

Codec iq2_xs_codec() {
  Codec c{GgmlType::IQ2_XS, "iq2_xs", kSuper, sizeof(BlockIq2Xs), dequantize,
          quantize_lattice_rows<BlockIq2Xs, quantize_block, iq2::xs_lattice>, ActFormat::Q8_K};
  c.grid = &kGrid;
  return c;
}

}  // namespace imq::quant
