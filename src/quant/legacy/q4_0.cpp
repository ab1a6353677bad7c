// Q4_0: blocks of 32 weights, one f16 scale and 4-bit codes centred on 8 (spec g.3).
//
//   offset 0        2                                            18
//          +--------+--------------------------------------------+
//          | d  f16 | qs[16]: low nibble = q[j], high = q[j+16]  |
//          +--------+--------------------------------------------+
//   x[j] = d * (q[j] - 8),   q in 0..15
//
// Without importance (ggml's reference path): d = -(signed max) / 8, q = min(15, trunc(x/d + 8.5)).
// With importance: row-wide sigma2, w = qw * sqrt(sigma2 + x^2), SYM search with nmax 8.
#include <algorithm>
#include <cmath>

#include "core/fp16.h"
#include "quant/block_io.h"
#include "quant/legacy/codecs.h"
#include "quant/legacy/fit.h"
#include "quant/legacy/grid.h"

namespace imq::quant {
namespace {

constexpr int kQK = 32;

struct BlockQ4_0 {
  uint16_t d;             // f16 scale
  uint8_t qs[kQK / 2];    // element j in the low nibble of qs[j], j + 16 in the high nibble
};
static_assert(sizeof(BlockQ4_0) == 18, "Q4_0 block is 18 bytes");

void pack(const uint8_t* q, BlockQ4_0& b) {
  for (int j = 0; j < kQK / 2; ++j) b.qs[j] = uint8_t(q[j] | (q[j + kQK / 2] << 4));
}

void dequantize(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / kQK; ++i) {
    const auto b = load_block<BlockQ4_0>(src, i);
    const float d = f16_to_f32(b.d);
    float* y = dst + i * kQK;
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = float((b.qs[j] & 0x0f) - 8) * d;
      y[j + kQK / 2] = float((b.qs[j] >> 4) - 8) * d;
    }
  }
}

BlockQ4_0 quantize_block(const float* x, const float* qw, float sigma2) {
  uint8_t q[kQK];
  BlockQ4_0 b;
  b.d = f32_to_f16(qw ? importance_sym_fit(x, qw, sigma2, kQK, 8, q) : plain_sym_fit(x, kQK, 8, q));
  pack(q, b);
  return b;
}

size_t quantize(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                const float* importance) {
  return quantize_rows<BlockQ4_0, kQK>(src, dst, nrows, n_per_row, importance, quantize_block);
}

}  // namespace

Codec q4_0_codec() {
  Codec c{GgmlType::Q4_0, "q4_0", kQK, sizeof(BlockQ4_0), dequantize, quantize, ActFormat::Q8_0};
  c.grid = &LegacyGrid<BlockQ4_0, kQK, 0, 15, 8, false, quantize_block, nibble_codes<BlockQ4_0>, pack>::ops;
  return c;
}

}  // namespace imq::quant
