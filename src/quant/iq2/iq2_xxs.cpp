// IQ2_XXS: super-blocks of 256 weights, 2.0625 bits per weight (spec g.3): an f16 scale, then
// per 32-weight sub-block four 8-value groups coded as points of a 256-point grid
// (iq2xxs_grid.h), 28 sign bits and a 4-bit scale, in two little-endian u32.
//
//   offset 0        2                                                                66
//          +--------+-----------------------------------------------------------------+
//          | d  f16 | per sub-block ib: u32 idx (byte l: grid index of group l),      |
//          |        |                   u32 aux (bits 7l..7l+6: signs of group l,     |
//          |        |                            bits 28..31: s)                      |
//          +--------+-----------------------------------------------------------------+
//   x[32ib + 8l + j] = d * (0.5 + s) * 0.25 * level(grid[idx byte l], j)
//                      * (sign_byte(aux >> 7l) bit j ? -1 : 1)
//
// Quantization (llama-quantize's, importance required there): per sub-block the signs are folded into magnitudes
// (fold_signs), the start scale comes from make_qp_quants (pos_scale_search, levels 0..4), 13
// trial scales round each group to the lattice (off-grid points: best grid neighbour) and the
// largest (sum w x q)^2 / sum w q^2 wins; every group is then re-rounded with the winning scale,
// which is re-fitted. d = max sub-block scale / 31.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "imq/error.h"
#include "quant/block_io.h"
#include "quant/grid.h"
#include "quant/iq2/codecs.h"
#include "quant/iq2/iq2xxs_grid.h"
#include "quant/kquants/kquants.h"
#include "quant/lattice/lattice.h"

namespace imq::quant {
namespace {

constexpr int kSuper = 256, kSub = 32, kNumSub = kSuper / kSub;
constexpr int kMaxQ = 3;  // levels per coordinate

struct BlockIq2Xxs {
  uint16_t d;               // f16 super-block scale
  uint8_t qs[kSuper / 4];   // per sub-block: u32 grid indices, u32 signs and scale
};
static_assert(sizeof(BlockIq2Xxs) == 66, "IQ2_XXS block is 66 bytes");

void dequantize(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / kSuper; ++i) {
    const auto b = load_block<BlockIq2Xxs>(src, i);
    const float d = f16_to_f32(b.d);
    float* y = dst + i * kSuper;
    for (int ib = 0; ib < kNumSub; ++ib) {
      uint32_t aux;
      std::memcpy(&aux, b.qs + 8 * ib + 4, 4);
      const float db = d * (0.5f + float(aux >> 28)) * 0.25f;
      for (int l = 0; l < 4; ++l) {
        const uint16_t code = iq2::kXxsGrid[b.qs[8 * ib + l]];
        const uint8_t signs = sign_byte(aux >> (7 * l));
        for (int j = 0; j < 8; ++j) {
          const float q = float(iq2::kLevels[(code >> (2 * j)) & 3]);
          y[32 * ib + 8 * l + j] = db * q * (signs & (1u << j) ? -1.0f : 1.0f);
        }
      }
    }
  }
}

// One sub-block: writes its grid indices and signs (scale bits added later), returns its scale
// (0 for an all-(near-)zero sub-block, whose words stay 0).
float quantize_sub_block(const Lattice& lat, const float* xb, const float* weight, uint32_t* q2) {
  float xval[kSub], waux[kSub];
  for (int i = 0; i < kSub; ++i) waux[i] = std::sqrt(weight[i]);
  uint8_t signs[4];
  for (int k = 0; k < 4; ++k) signs[k] = fold_signs(xb + 8 * k, weight + 8 * k, xval + 8 * k);
  float max = xval[0];
  for (int i = 1; i < kSub; ++i) max = std::max(max, xval[i]);
  if (max < kGroupMaxEps) return 0.0f;

  // The start: make_qp_quants' codes (0..kMaxQ+1, kept if no trial below improves on zero).
  uint8_t start[kSub];
  float scale = pos_scale_search(kSub, kMaxQ + 1, xval, weight, start);
  const float eff_max = scale * kMaxQ;
  if (eff_max <= 0) return 0.0f;  // the start found nothing: the sub-block stays 0
  int8_t L[kSub];
  for (int i = 0; i < kSub; ++i) L[i] = int8_t(start[i]);
  float best = 0;
  for (int is = -6; is <= 6; ++is) {
    const float id = (float(2 * kMaxQ - 1) + float(is) * 0.1f) / eff_max;
    const float this_scale = 1 / id;
    int8_t trial[kSub];
    for (int k = 0; k < 4; ++k) lat.round(xval + 8 * k, waux + 8 * k, id, this_scale, kMaxQ - 1, trial + 8 * k);
    float sumqx, sumq2;
    fit_sums(kSub, xval, weight, trial, &sumqx, &sumq2);
    if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
      scale = sumqx / sumq2, best = scale * sumqx;
      std::copy(trial, trial + kSub, L);
    }
  }
  if (scale > 0) {
    const float id = 1 / scale;
    for (int k = 0; k < 4; ++k) lat.round(xval + 8 * k, waux + 8 * k, id, scale, kMaxQ - 1, L + 8 * k);
    float sumqx, sumq2;
    fit_sums(kSub, xval, weight, L, &sumqx, &sumq2);
    if (sumq2 > 0) scale = sumqx / sumq2;
  }
  if (scale < 0) {  // never expected; the stored scale is unsigned, so flip the signs instead
    scale = -scale;
    for (auto& s : signs) s = uint8_t(~s & 127);
  }
  for (int k = 0; k < 4; ++k) {
    const int g = lat.find(lat.pack(L + 8 * k));
    if (g < 0) throw_error("IQ2_XXS: group {} left off the grid", k);
    q2[0] |= uint32_t(g) << (8 * k);
    q2[1] |= uint32_t(signs[k]) << (7 * k);
  }
  return scale;
}

BlockIq2Xxs quantize_block(const Lattice& lat, const float* x, const float* qw) {
  float sumx2 = 0;
  for (int i = 0; i < kSuper; ++i) sumx2 += x[i] * x[i];
  const float sigma2 = sumx2 / kSuper;

  uint32_t q2[2 * kNumSub] = {};
  float scales[kNumSub], max_scale = 0;
  for (int ib = 0; ib < kNumSub; ++ib) {
    const float* xb = x + kSub * ib;
    float weight[kSub];
    // Without importance (llama-quantize refuses that): ggml's earlier weights.
    if (qw) importance_weights(xb, qw + kSub * ib, sigma2, kSub, weight);
    else for (int i = 0; i < kSub; ++i) weight[i] = 0.25f * sigma2 + xb[i] * xb[i];
    scales[ib] = quantize_sub_block(lat, xb, weight, q2 + 2 * ib);
    max_scale = std::max(max_scale, scales[ib]);
  }
  BlockIq2Xxs b{};
  if (max_scale == 0) return b;
  const float d = max_scale / 31;
  b.d = f32_to_f16(d);
  const float id = 1 / d;
  for (int ib = 0; ib < kNumSub; ++ib) {
    const int l = odd_scale_code(id, scales[ib], 15);
    q2[2 * ib + 1] |= uint32_t(l) << 28;
  }
  std::memcpy(b.qs, q2, sizeof q2);
  return b;
}

// The block grid (quant/grid.h): fit is the search above; round_group codes the 8-value group
// at `first` at its sub-block's stored scale. Level l decodes to kLevels[l] / 8 ≈ 2l + 1 times
// 2 d (0.5 + s), the scale the search rounds at.
void grid_fit(const float* x, const float* qw, int /*variant*/, void* block, BlockGrid& /*g*/) {
  store_block(block, 0, quantize_block(iq2::xxs_lattice(), x, qw));
}

void grid_round_group(int first, const float* x, const float* w, void* block) {
  auto b = load_block<BlockIq2Xxs>(block, 0);
  const int ib = first / kSub, k = first % kSub / 8;
  uint32_t q2[2];
  std::memcpy(q2, b.qs + 8 * ib, sizeof q2);
  const float scale = 2 * f16_to_f32(b.d) * (0.5f + float(q2[1] >> 28));
  if (!(scale > 0)) return;  // an all-zero block keeps its codes
  const Lattice& lat = iq2::xxs_lattice();
  int8_t L[8];
  const uint32_t signs = round_sign_group(lat, true, 8, x, w, scale, kMaxQ - 1, L);
  q2[0] = (q2[0] & ~(255u << (8 * k))) | uint32_t(lat.find(lat.pack(L))) << (8 * k);
  q2[1] = (q2[1] & ~(127u << (7 * k))) | signs << (7 * k);
  std::memcpy(b.qs + 8 * ib, q2, sizeof q2);
  store_block(block, 0, b);
}

constexpr GridOps kGrid{1, grid_fit, nullptr, 8, grid_round_group};

}  // namespace

const Lattice& iq2::xxs_lattice() {
  static const Lattice lattice(kXxsGrid, 8, 2, kMaxQ, 2);
  return lattice;
}

Codec iq2_xxs_codec() {
  Codec c{GgmlType::IQ2_XXS, "iq2_xxs", kSuper, sizeof(BlockIq2Xxs), dequantize,
          quantize_lattice_rows<BlockIq2Xxs, quantize_block, iq2::xxs_lattice>, ActFormat::Q8_K};
  c.grid = &kGrid;
  return c;
}

}  // namespace imq::quant
