// IQ4_NL: blocks of 32 weights, one f16 scale and 4-bit indices into a non-linear codebook
// (spec g.3, g.6).
//
//   offset 0        2                                            18
//          +--------+--------------------------------------------+
//          | d  f16 | qs[16]: low nibble = q[j], high = q[j+16]  |
//          +--------+--------------------------------------------+
//   x[j] = d * K[q[j]],   K = iq4::kCodebook
//
// Quantization (with or without importance, ntry 7): sigma2 = 2 * sum(x^2) / 32 per block,
// w = qw * sqrt(sigma2 + x^2) (importance) or x^2; scale search; d stored as f16, then every
// code re-assigned with 1 / d computed from the float (not the f16) scale.
#include "core/fp16.h"
#include "quant/block_io.h"
#include "quant/grid.h"
#include "quant/iq4/codecs.h"
#include "quant/iq4/iq4_search.h"

namespace imq::quant {
namespace {

using iq4::kBlock;

struct BlockIq4Nl {
  uint16_t d;               // f16 scale
  uint8_t qs[kBlock / 2];   // element j in the low nibble of qs[j], j + 16 in the high nibble
};
static_assert(sizeof(BlockIq4Nl) == 18, "IQ4_NL block is 18 bytes");

void dequantize(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / kBlock; ++i) {
    const auto b = load_block<BlockIq4Nl>(src, i);
    const float d = f16_to_f32(b.d);
    float* y = dst + i * kBlock;
    for (int j = 0; j < kBlock / 2; ++j) {
      y[j] = d * float(iq4::kCodebook[b.qs[j] & 0x0f]);
      y[j + kBlock / 2] = d * float(iq4::kCodebook[b.qs[j] >> 4]);
    }
  }
}

BlockIq4Nl quantize_block(const float* x, const float* qw) {
  float sigma2 = 0;
  for (int j = 0; j < kBlock; ++j) sigma2 += x[j] * x[j];
  sigma2 *= 2.0f / float(kBlock);
  float w[kBlock];
  iq4::block_weights(x, qw, sigma2, w);
  const float d = iq4::search_block_scale(x, w);
  uint8_t codes[kBlock];
  iq4::assign_codes(x, d != 0 ? 1 / d : 0.0f, codes);
  BlockIq4Nl b;
  b.d = f32_to_f16(d);
  iq4::pack_codes(codes, b.qs);
  return b;
}

// The block grid (quant/grid.h): the scale search as above, then element j decodes to
// its scale times the codebook entry of its code.
void grid_fit(const float* x, const float* qw, int /*variant*/, void* block, BlockGrid& g) {
  const BlockIq4Nl b = quantize_block(x, qw);
  store_block(block, 0, b);
  g.qmin = 0, g.qmax = 15, g.levels = iq4::kCodebook;
  const float d = f16_to_f32(b.d);
  for (int j = 0; j < kBlock; ++j) g.step[j] = d;
  for (int j = 0; j < kBlock; ++j) g.offset[j] = 0.0f;
  for (int j = 0; j < kBlock / 2; ++j)
    g.q[j] = int8_t(b.qs[j] & 0x0f), g.q[j + kBlock / 2] = int8_t(b.qs[j] >> 4);
}

void grid_store(const BlockGrid& g, void* block) {
  BlockIq4Nl b = load_block<BlockIq4Nl>(block, 0);
  uint8_t codes[kBlock];
  for (int j = 0; j < kBlock; ++j) codes[j] = uint8_t(g.q[j]);
  iq4::pack_codes(codes, b.qs);
  store_block(block, 0, b);
}

constexpr GridOps kGrid{1, grid_fit, grid_store};

size_t quantize(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                const float* importance) {
  const int64_t nb = n_per_row / kBlock;
  for (int64_t r = 0; r < nrows; ++r) {
    for (int64_t i = 0; i < nb; ++i) {
      const float* qw = importance ? importance + i * kBlock : nullptr;
      store_block(dst, r * nb + i, quantize_block(src + r * n_per_row + i * kBlock, qw));
    }
  }
  return size_t(nrows * nb) * sizeof(BlockIq4Nl);
}

}  // namespace

Codec iq4_nl_codec() {
  Codec c{GgmlType::IQ4_NL, "iq4_nl", kBlock, sizeof(BlockIq4Nl), dequantize, quantize, ActFormat::Q8_0};
  c.grid = &kGrid;
  return c;
}

}  // namespace imq::quant
