// IQ3_XXS: super-blocks of 256 weights, 3.0625 bits per weight (spec g.3): an f16 scale, then
// per 32-weight sub-block eight 4-value groups coded as points of a 256-point grid
// (iq3xxs_grid.h), 28 sign bits and a 4-bit scale.
//
//   offset 0        2                                66                                98
//          +--------+---------------------------------+---------------------------------+
//          | d  f16 | qs[64]: grid index of group k   | aux[8] u32, one per sub-block:  |
//          |        | of sub-block ib at 8ib + k      | bits 7l..7l+6 signs of 8-value  |
//          |        |                                 | half l (0..3), bits 28..31 s    |
//          +--------+---------------------------------+---------------------------------+
//   x[32ib + 8l + j] = d * (0.5 + s) * 0.5 * level(grid[qs[8ib + 2l + j/4]], j%4)
//                      * (sign_byte(aux >> 7l) bit j ? -1 : 1)
//
// Quantization (llama-quantize's, with or without importance): per sub-block the signs are
// folded into magnitudes (fold_signs), 31 trial scales round each group to the lattice, an
// off-grid point is replaced by its best grid neighbour, and the trial with the largest
// (sum w x q)^2 / sum w q^2 wins; groups that were off the grid are re-rounded with the
// winning scale, which is then re-fitted. d = max sub-block scale / 31 (stored times 1.0125).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "imq/error.h"
#include "quant/block_io.h"
#include "quant/grid.h"
#include "quant/iq3/codecs.h"
#include "quant/iq3/iq3xxs_grid.h"
#include "quant/lattice/lattice.h"
#include "quant/legacy/search.h"

namespace imq::quant {
namespace {

constexpr int kSuper = 256, kSub = 32, kNumSub = kSuper / kSub;
constexpr int kMaxQ = 8;                  // levels per coordinate
constexpr float kGroupMaxEpsXxs = 1e-8f;  // ggml's GROUP_MAX_EPS_IQ3_XXS

struct BlockIq3Xxs {
  uint16_t d;                 // f16 super-block scale
  uint8_t qs[kSuper / 4];     // grid indices, 8 per sub-block
  uint8_t aux[kNumSub * 4];   // per sub-block a little-endian u32: 4 x 7 sign bits, 4-bit scale
};
static_assert(sizeof(BlockIq3Xxs) == 98, "IQ3_XXS block is 98 bytes");

uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

void dequantize(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / kSuper; ++i) {
    const auto b = load_block<BlockIq3Xxs>(src, i);
    const float d = f16_to_f32(b.d);
    float* y = dst + i * kSuper;
    for (int ib = 0; ib < kNumSub; ++ib) {
      const uint32_t aux = load_u32(b.aux + 4 * ib);
      const float db = d * (0.5f + float(aux >> 28)) * 0.5f;
      for (int l = 0; l < 4; ++l) {
        const uint8_t signs = sign_byte(aux >> (7 * l));
        for (int j = 0; j < 8; ++j) {
          const uint16_t code = iq3::kXxsGrid[b.qs[8 * ib + 2 * l + j / 4]];
          const float q = float(iq3::kXxsLevels[(code >> (3 * (j % 4))) & 7]);
          y[32 * ib + 8 * l + j] = db * q * (signs & (1u << j) ? -1.0f : 1.0f);
        }
      }
    }
  }
}

// One sub-block: fills its 8 grid indices and signs word (scale bits added later), returns its
// scale (0 for an all-(near-)zero sub-block, whose indices and signs stay 0).
float quantize_sub_block(const Lattice& lat, const float* xb, const float* weight, uint8_t* qs, uint32_t* aux) {
  float xval[kSub], waux[kSub];
  for (int i = 0; i < kSub; ++i) waux[i] = std::sqrt(weight[i]);
  uint8_t signs[4];
  for (int k = 0; k < 4; ++k) signs[k] = fold_signs(xb + 8 * k, weight + 8 * k, xval + 8 * k);
  float max = xval[0];
  for (int i = 1; i < kSub; ++i) max = std::max(max, xval[i]);
  if (max < kGroupMaxEpsXxs) return 0.0f;
  int8_t L[kSub];
  float scale = trial_search(lat, {kMaxQ - 1, 15, 0.2f, false}, kSub, xval, weight, waux, max, L);
  if (scale < 0) {  // never expected; the stored scale is unsigned, so flip the signs instead
    scale = -scale;
    for (auto& s : signs) s = uint8_t(~s & 127);
  }
  for (int k = 0; k < 8; ++k) {
    const int g = lat.find(lat.pack(L + 4 * k));
    if (g < 0) throw_error("IQ3_XXS: group {} left off the grid", k);
    qs[k] = uint8_t(g);
  }
  *aux = uint32_t(signs[0]) | uint32_t(signs[1]) << 7 | uint32_t(signs[2]) << 14 | uint32_t(signs[3]) << 21;
  return scale;
}

BlockIq3Xxs quantize_block(const Lattice& lat, const float* x, const float* qw) {
  float sumx2 = 0;
  for (int i = 0; i < kSuper; ++i) sumx2 += x[i] * x[i];
  const float sigma2 = 2 * sumx2 / kSuper;

  BlockIq3Xxs b{};
  uint32_t aux[kNumSub] = {};
  float scales[kNumSub], max_scale = 0;
  for (int ib = 0; ib < kNumSub; ++ib) {
    const float* xb = x + kSub * ib;
    float weight[kSub];
    if (qw) importance_weights(xb, qw + kSub * ib, sigma2, kSub, weight);
    else for (int i = 0; i < kSub; ++i) weight[i] = xb[i] * xb[i];
    scales[ib] = quantize_sub_block(lat, xb, weight, b.qs + 8 * ib, aux + ib);
    max_scale = std::max(max_scale, scales[ib]);
  }
  if (max_scale == 0) return BlockIq3Xxs{};
  const float d = max_scale / 31;
  b.d = f32_to_f16(d * 1.0125f);  // ggml's fudge factor
  const float id = 1 / d;
  for (int ib = 0; ib < kNumSub; ++ib) {
    const int l = odd_scale_code(id, scales[ib], 15);
    aux[ib] |= uint32_t(l) << 28;
  }
  std::memcpy(b.aux, aux, sizeof aux);
  return b;
}

// The block grid (quant/grid.h): fit is the search above; round_group codes the 8-value sign
// group at `first` (two lattice points) at its sub-block's stored scale. Level l decodes to
// kXxsLevels[l] / 4 ≈ 2l + 1 times 2 d (0.5 + s), the scale the search rounds at.
void grid_fit(const float* x, const float* qw, int /*variant*/, void* block, BlockGrid& /*g*/) {
  store_block(block, 0, quantize_block(iq3::xxs_lattice(), x, qw));
}

void grid_round_group(int first, const float* x, const float* w, void* block) {
  auto b = load_block<BlockIq3Xxs>(block, 0);
  const int ib = first / kSub, l = first % kSub / 8;
  uint32_t aux = load_u32(b.aux + 4 * ib);
  const float scale = 2 * f16_to_f32(b.d) * (0.5f + float(aux >> 28));
  if (!(scale > 0)) return;  // an all-zero block keeps its codes
  const Lattice& lat = iq3::xxs_lattice();
  int8_t L[8];
  const uint32_t signs = round_sign_group(lat, true, 8, x, w, scale, kMaxQ - 1, L);
  for (int h = 0; h < 2; ++h) b.qs[8 * ib + 2 * l + h] = uint8_t(lat.find(lat.pack(L + 4 * h)));
  aux = (aux & ~(127u << (7 * l))) | signs << (7 * l);
  std::memcpy(b.aux + 4 * ib, &aux, 4);
  store_block(block, 0, b);
}

constexpr GridOps kGrid{1, grid_fit, nullptr, 8, grid_round_group};

}  // namespace

const Lattice& iq3::xxs_lattice() {
  static const Lattice lattice(kXxsGrid, 4, 3, kMaxQ, 2);
  return lattice;
}

Codec iq3_xxs_codec() {
  Codec c{GgmlType::IQ3_XXS, "iq3_xxs", kSuper, sizeof(BlockIq3Xxs), dequantize,
          quantize_lattice_rows<BlockIq3Xxs, quantize_block, iq3::xxs_lattice>, ActFormat::Q8_K};
  c.grid = &kGrid;
  return c;
}

}  // namespace imq::quant
