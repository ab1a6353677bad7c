// IQ3_S: super-blocks of 256 weights, 3.4375 bits per weight (spec g.3): an f16 scale, then
// per 32-weight sub-block eight 4-value groups coded as points of a 512-point grid
// (iq3s_grid.h), 32 explicit sign bits, and a 4-bit scale per sub-block.
//
//   offset 0       2              66            74                106          110
//          +-------+--------------+-------------+-----------------+------------+
//          | d f16 | qs[64]: low  | qh[8]: bit k| signs[32]: 4    | scales[4]: |
//          |       | 8 bits of    | of qh[ib] = | bytes per sub-  | ib even in |
//          |       | index 8ib+k  | bit 8 of it | block, bit j of | low nibble |
//          |       |              |             | byte 4ib+l: x<0 |            |
//          +-------+--------------+-------------+-----------------+------------+
//   x[32ib + 8l + j] = d * (1 + 2s) * (2 level(grid[idx(8ib + 2l + j/4)], j%4) + 1)
//                      * (signs[4ib + l] bit j ? -1 : 1)
//
// Quantization (llama-quantize's): magnitudes and signs per value; 19 trial scales round each
// group to the lattice (off-grid points: best of the 3 nearest shells of grid points) and the
// largest (sum w x q)^2 / sum w q^2 wins; when any group of the winner was off the grid, every
// group is re-rounded with its scale, which is re-fitted. d = max sub-block scale / 31, stored
// times 1.033.
//
// llama-quantize's quirk, kept for identical bytes: an all-zero sub-block does not advance its
// index and sign outputs, so the next sub-block's land in its place (and the last ones stay 0).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "imq/error.h"
#include "quant/block_io.h"
#include "quant/grid.h"
#include "quant/iq3/codecs.h"
#include "quant/iq3/iq3s_grid.h"
#include "quant/lattice/lattice.h"
#include "quant/legacy/search.h"

namespace imq::quant {
namespace {

constexpr int kSuper = 256, kSub = 32, kNumSub = kSuper / kSub;
constexpr int kMaxQ = 8;  // levels per coordinate

struct BlockIq3S {
  uint16_t d;                  // f16 super-block scale
  uint8_t qs[kSuper / 4];      // low 8 bits of the grid indices
  uint8_t qh[kSuper / 32];     // bit 8 of the grid indices, one byte per sub-block
  uint8_t signs[kSuper / 8];   // one sign bit per value
  uint8_t scales[kNumSub / 2]; // 4-bit sub-block scales, two per byte
};
static_assert(sizeof(BlockIq3S) == 110, "IQ3_S block is 110 bytes");

void dequantize(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / kSuper; ++i) {
    const auto b = load_block<BlockIq3S>(src, i);
    const float d = f16_to_f32(b.d);
    float* y = dst + i * kSuper;
    for (int ib = 0; ib < kNumSub; ++ib) {
      const float db = d * float(1 + 2 * ((b.scales[ib / 2] >> (4 * (ib % 2))) & 15));
      for (int l = 0; l < 4; ++l) {
        for (int j = 0; j < 8; ++j) {
          const int k = 2 * l + j / 4;
          const uint16_t code = iq3::kSGrid[b.qs[8 * ib + k] | ((b.qh[ib] >> k) & 1) << 8];
          const float q = float(2 * ((code >> (3 * (j % 4))) & 7) + 1);
          y[32 * ib + 8 * l + j] = db * q * (b.signs[4 * ib + l] & (1u << j) ? -1.0f : 1.0f);
        }
      }
    }
  }
}

// One sub-block with magnitudes xval (largest max > 0) and signs: writes its 8 grid indices, returns its scale.
float search_sub_block(const Lattice& lat, const float* xval, const float* weight, float max, uint8_t signs[4],
                       int grid[8]) {
  float waux[kSub];
  for (int i = 0; i < kSub; ++i) waux[i] = std::sqrt(weight[i]);
  int8_t L[kSub];
  float scale = trial_search(lat, {kMaxQ - 1, 9, 0.2f, true}, kSub, xval, weight, waux, max, L);
  if (scale < 0) {  // never expected; the stored scale is unsigned, so flip the signs instead
    scale = -scale;
    for (int k = 0; k < 4; ++k) signs[k] = uint8_t(~signs[k]);
  }
  for (int k = 0; k < 8; ++k) {
    grid[k] = lat.find(lat.pack(L + 4 * k));
    if (grid[k] < 0) throw_error("IQ3_S: group {} left off the grid", k);
  }
  return scale;
}

BlockIq3S quantize_block(const Lattice& lat, const float* x, const float* qw) {
  float sumx2 = 0;
  for (int i = 0; i < kSuper; ++i) sumx2 += x[i] * x[i];
  const float sigma2 = 2 * sumx2 / kSuper;

  BlockIq3S b{};
  float scales[kNumSub], max_scale = 0;
  int out = 0;  // the sub-block slot the next indices and signs go to (see the quirk above)
  for (int ib = 0; ib < kNumSub; ++ib) {
    const float* xb = x + kSub * ib;
    float weight[kSub], xval[kSub];
    if (qw) importance_weights(xb, qw + kSub * ib, sigma2, kSub, weight);
    else for (int i = 0; i < kSub; ++i) weight[i] = xb[i] * xb[i];
    uint8_t signs[4] = {};
    for (int i = 0; i < kSub; ++i) {
      xval[i] = xb[i] >= 0 ? xb[i] : -xb[i];
      if (xb[i] < 0) signs[i / 8] |= uint8_t(1u << (i % 8));
    }
    float max = xval[0];
    for (int i = 1; i < kSub; ++i) max = std::max(max, xval[i]);
    if (max == 0) {
      scales[ib] = 0;
      continue;
    }
    int grid[8];
    scales[ib] = search_sub_block(lat, xval, weight, max, signs, grid);
    for (int k = 0; k < 8; ++k) {
      b.qs[8 * out + k] = uint8_t(grid[k] & 255);
      b.qh[ib] |= uint8_t((grid[k] >> 8) << k);  // ggml indexes qh by ib, not by the slot
    }
    std::memcpy(b.signs + 4 * out, signs, 4);
    ++out;
    max_scale = std::max(max_scale, scales[ib]);
  }
  if (max_scale == 0) return b;
  const float d = max_scale / 31;
  b.d = f32_to_f16(d * 1.033f);
  const float id = 1 / d;
  for (int ib = 0; ib < kNumSub; ib += 2) {
    const int l1 = odd_scale_code(id, scales[ib], 15);
    const int l2 = odd_scale_code(id, scales[ib + 1], 15);
    b.scales[ib / 2] = uint8_t(l1 | (l2 << 4));
  }
  return b;
}

// The block grid (quant/grid.h): fit is the search above; round_group codes the 4-value group
// at `first` (one lattice point, free signs) at its sub-block's stored scale d (1 + 2s). Every
// group is rounded, so the quirk's displaced slots end up in place.
void grid_fit(const float* x, const float* qw, int /*variant*/, void* block, BlockGrid& /*g*/) {
  store_block(block, 0, quantize_block(iq3::s_lattice(), x, qw));
}

void grid_round_group(int first, const float* x, const float* w, void* block) {
  auto b = load_block<BlockIq3S>(block, 0);
  const int ib = first / kSub, k = first % kSub / 4, byte = first / 8, shift = first % 8;
  const float scale = f16_to_f32(b.d) * float(1 + 2 * ((b.scales[ib / 2] >> (4 * (ib % 2))) & 15));
  if (!(scale > 0)) return;  // an all-zero block keeps its codes
  const Lattice& lat = iq3::s_lattice();
  int8_t L[4];
  const int signs = round_sign_group(lat, false, 4, x, w, scale, kMaxQ - 1, L);
  const int idx = lat.find(lat.pack(L));
  b.qs[8 * ib + k] = uint8_t(idx & 255);
  b.qh[ib] = uint8_t((b.qh[ib] & ~(1 << k)) | (idx >> 8) << k);
  b.signs[byte] = uint8_t((b.signs[byte] & ~(15 << shift)) | signs << shift);
  store_block(block, 0, b);
}

constexpr GridOps kGrid{1, grid_fit, nullptr, 4, grid_round_group};

}  // namespace

const Lattice& iq3::s_lattice() {
  static const Lattice lattice(kSGrid, 4, 3, kMaxQ, 3);
  return lattice;
}

Codec iq3_s_codec() {
  Codec c{GgmlType::IQ3_S, "iq3_s", kSuper, sizeof(BlockIq3S), dequantize,
          quantize_lattice_rows<BlockIq3S, quantize_block, iq3::s_lattice>, ActFormat::Q8_K};
  c.grid = &kGrid;
  return c;
}

}  // namespace imq::quant
