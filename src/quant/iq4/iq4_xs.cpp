// IQ4_XS: super-blocks of 256 weights: an f16 scale, eight 6-bit sub-block scales and 4-bit
// indices into the IQ4_NL codebook (spec g.3, g.6).
//
//   offset 0        2             4              8                                    136
//          +--------+-------------+--------------+------------------------------------+
//          | d  f16 | scales_h u16| scales_l[4]  | qs[128]: 8 sub-blocks x 16 bytes   |
//          +--------+-------------+--------------+------------------------------------+
//   sub-block ib (0..7): ls = (scales_l[ib/2] >> 4*(ib%2)) & 15 | ((scales_h >> 2*ib) & 3) << 4
//   x[32ib + j] = d * (ls - 32) * K[q],  q = low nibble of qs[16ib + j] (j < 16),
//                                         high nibble of qs[16ib + j - 16] (j >= 16)
//
// Quantization (ntry 7): sigma2 = 2 * sum(x^2) / 256, per-sub-block scale search as IQ4_NL,
// d = -(signed largest sub-block scale) / 32, ls = clamp(round(s / d), -32, 31) + 32, then
// codes re-assigned with 1 / (d * (ls - 32)) from the float d.
#include <algorithm>
#include <cmath>

#include "core/fp16.h"
#include "quant/block_io.h"
#include "quant/grid.h"
#include "quant/iq4/codecs.h"
#include "quant/iq4/iq4_search.h"
#include "quant/legacy/search.h"
#include "quant/signed_absmax.h"

namespace imq::quant {
namespace {

using iq4::kBlock;
constexpr int kSuper = 256;
constexpr int kSubBlocks = kSuper / kBlock;

struct BlockIq4Xs {
  uint16_t d;                        // f16 super-block scale
  uint16_t scales_h;                 // high 2 bits of sub-block scale ib at bits 2ib..2ib+1
  uint8_t scales_l[kSubBlocks / 2];  // low 4 bits: even ib low nibble, odd ib high nibble
  uint8_t qs[kSuper / 2];            // per sub-block 16 bytes, nibbles as IQ4_NL
};
static_assert(sizeof(BlockIq4Xs) == 136, "IQ4_XS block is 136 bytes");

void dequantize(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / kSuper; ++i) {
    const auto b = load_block<BlockIq4Xs>(src, i);
    const float d = f16_to_f32(b.d);
    for (int ib = 0; ib < kSubBlocks; ++ib) {
      const int ls =
          ((b.scales_l[ib / 2] >> (4 * (ib % 2))) & 15) | (((b.scales_h >> (2 * ib)) & 3) << 4);
      const float dl = d * float(ls - 32);
      const uint8_t* qs = b.qs + 16 * ib;
      float* y = dst + i * kSuper + ib * kBlock;
      for (int j = 0; j < kBlock / 2; ++j) {
        y[j] = dl * float(iq4::kCodebook[qs[j] & 0x0f]);
        y[j + kBlock / 2] = dl * float(iq4::kCodebook[qs[j] >> 4]);
      }
    }
  }
}

BlockIq4Xs quantize_block(const float* x, const float* qw) {
  float sigma2 = 0;
  for (int j = 0; j < kSuper; ++j) sigma2 += x[j] * x[j];
  sigma2 *= 2.0f / float(kSuper);

  float scales[kSubBlocks];
  for (int ib = 0; ib < kSubBlocks; ++ib) {
    float w[kBlock];
    iq4::block_weights(x + ib * kBlock, qw ? qw + ib * kBlock : nullptr, sigma2, w);
    scales[ib] = iq4::search_block_scale(x + ib * kBlock, w);
  }
  const float max_scale = signed_absmax(scales, kSubBlocks);

  BlockIq4Xs b{};
  const float d = -max_scale / 32.0f;
  b.d = f32_to_f16(d);
  const float id = d != 0 ? 1 / d : 0.0f;
  for (int ib = 0; ib < kSubBlocks; ++ib) {
    const int l = std::max(-32, std::min(31, nearest_int(id * scales[ib])));
    const float dl = d * float(l);
    uint8_t codes[kBlock];
    iq4::assign_codes(x + ib * kBlock, dl != 0 ? 1 / dl : 0.0f, codes);
    iq4::pack_codes(codes, b.qs + 16 * ib);
    const int ls = l + 32;
    b.scales_l[ib / 2] |= uint8_t((ls & 15) << (4 * (ib % 2)));
    b.scales_h |= uint16_t((ls >> 4) << (2 * ib));
  }
  return b;
}

// The block grid (quant/grid.h): the scale search as above, then element j decodes to
// its scale times the codebook entry of its code.
void grid_fit(const float* x, const float* qw, int /*variant*/, void* block, BlockGrid& g) {
  const BlockIq4Xs b = quantize_block(x, qw);
  store_block(block, 0, b);
  g.qmin = 0, g.qmax = 15, g.levels = iq4::kCodebook;
  const float d = f16_to_f32(b.d);
  for (int ib = 0; ib < kSubBlocks; ++ib) {
    const int ls =
        ((b.scales_l[ib / 2] >> (4 * (ib % 2))) & 15) | (((b.scales_h >> (2 * ib)) & 3) << 4);
    for (int j = 0; j < kBlock; ++j) g.step[ib * kBlock + j] = d * float(ls - 32);
  }
  for (int j = 0; j < kSuper; ++j) g.offset[j] = 0.0f;
  for (int ib = 0; ib < kSubBlocks; ++ib) {
    const uint8_t* qs = b.qs + 16 * ib;
    for (int j = 0; j < kBlock / 2; ++j)
      g.q[ib * kBlock + j] = int8_t(qs[j] & 0x0f), g.q[ib * kBlock + j + kBlock / 2] = int8_t(qs[j] >> 4);
  }
}

void grid_store(const BlockGrid& g, void* block) {
  BlockIq4Xs b = load_block<BlockIq4Xs>(block, 0);
  for (int ib = 0; ib < kSubBlocks; ++ib) {
    uint8_t codes[kBlock];
    for (int j = 0; j < kBlock; ++j) codes[j] = uint8_t(g.q[ib * kBlock + j]);
    iq4::pack_codes(codes, b.qs + 16 * ib);
  }
  store_block(block, 0, b);
}

constexpr GridOps kGrid{1, grid_fit, grid_store};

size_t quantize(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                const float* importance) {
  const int64_t nb = n_per_row / kSuper;
  for (int64_t r = 0; r < nrows; ++r) {
    for (int64_t i = 0; i < nb; ++i) {
      const float* qw = importance ? importance + i * kSuper : nullptr;
      store_block(dst, r * nb + i, quantize_block(src + r * n_per_row + i * kSuper, qw));
    }
  }
  return size_t(nrows * nb) * sizeof(BlockIq4Xs);
}

}  // namespace

Codec iq4_xs_codec() {
  Codec c{GgmlType::IQ4_XS, "iq4_xs", kSuper, sizeof(BlockIq4Xs), dequantize, quantize, ActFormat::Q8_K};
  c.grid = &kGrid;
  return c;
}

}  // namespace imq::quant
