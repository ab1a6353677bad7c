// Q4_1: blocks of 32 weights, f16 scale and f16 minimum, 4-bit codes (spec g.3).
//
//   offset 0        2        4                                            20
//          +--------+--------+--------------------------------------------+
//          | d  f16 | m  f16 | qs[16]: low nibble = q[j], high = q[j+16]  |
//          +--------+--------+--------------------------------------------+
//   x[j] = d * q[j] + m,   q in 0..15
//
// Without importance: d = (max - min) / 15, m = min, q = min(15, trunc((x - min)/d + 0.5)).
// With importance: row-wide sigma2, w = qw * sqrt(sigma2 + x^2), ASYM-IM(15, -0.9, 0.05, 36).
#include <algorithm>
#include <cfloat>
#include <cmath>

#include "core/fp16.h"
#include "quant/block_io.h"
#include "quant/legacy/codecs.h"
#include "quant/legacy/fit.h"
#include "quant/legacy/grid.h"

namespace imq::quant {
namespace {

constexpr int kQK = 32;

struct BlockQ4_1 {
  uint16_t d;             // f16 scale
  uint16_t m;             // f16 minimum (added)
  uint8_t qs[kQK / 2];    // element j in the low nibble of qs[j], j + 16 in the high nibble
};
static_assert(sizeof(BlockQ4_1) == 20, "Q4_1 block is 20 bytes");

void pack(const uint8_t* q, BlockQ4_1& b) {
  for (int j = 0; j < kQK / 2; ++j) b.qs[j] = uint8_t(q[j] | (q[j + kQK / 2] << 4));
}

void dequantize(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / kQK; ++i) {
    const auto b = load_block<BlockQ4_1>(src, i);
    const float d = f16_to_f32(b.d);
    const float m = f16_to_f32(b.m);
    float* y = dst + i * kQK;
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = float(b.qs[j] & 0x0f) * d + m;
      y[j + kQK / 2] = float(b.qs[j] >> 4) * d + m;
    }
  }
}

BlockQ4_1 quantize_block(const float* x, const float* qw, float sigma2) {
  uint8_t q[kQK];
  float min = 0;
  const float d = qw ? importance_asym_fit(x, qw, sigma2, kQK, 15, q, &min) : plain_asym_fit(x, kQK, 15, q, &min);
  BlockQ4_1 b;
  b.d = f32_to_f16(d);
  b.m = f32_to_f16(min);
  pack(q, b);
  return b;
}

size_t quantize(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                const float* importance) {
  return quantize_rows<BlockQ4_1, kQK>(src, dst, nrows, n_per_row, importance, quantize_block);
}

}  // namespace

Codec q4_1_codec() {
  Codec c{GgmlType::Q4_1, "q4_1", kQK, sizeof(BlockQ4_1), dequantize, quantize, ActFormat::Q8_0};
  c.grid = &LegacyGrid<BlockQ4_1, kQK, 0, 15, 0, true, quantize_block, nibble_codes<BlockQ4_1>, pack>::ops;
  return c;
}

}  // namespace imq::quant
