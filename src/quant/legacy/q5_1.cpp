// Q5_1: blocks of 32 weights, f16 scale and f16 minimum, 5-bit codes (spec g.3).
//
//   offset 0        2        4                 8                                            24
//          +--------+--------+-----------------+--------------------------------------------+
//          | d  f16 | m  f16 | qh u32 LE       | qs[16]: low nibble = q[j], high = q[j+16]  |
//          +--------+--------+-----------------+--------------------------------------------+
//   bit j of qh = bit 4 of q[j] (j = 0..31);  x[j] = d * q[j] + m,  q in 0..31
//
// Without importance: d = (max - min) / 31, m = min, q = trunc((x - min)/d + 0.5) (no clamp).
// With importance: row-wide sigma2, w = qw * sqrt(sigma2 + x^2), ASYM-IM(31, -0.9, 0.05, 36).
#include <cfloat>
#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "quant/block_io.h"
#include "quant/legacy/codecs.h"
#include "quant/legacy/fit.h"
#include "quant/legacy/grid.h"

namespace imq::quant {
namespace {

constexpr int kQK = 32;

struct BlockQ5_1 {
  uint16_t d;             // f16 scale
  uint16_t m;             // f16 minimum (added)
  uint8_t qh[4];          // fifth bits, little-endian u32: bit j belongs to element j
  uint8_t qs[kQK / 2];    // low four bits: element j low nibble, j + 16 high nibble
};
static_assert(sizeof(BlockQ5_1) == 24, "Q5_1 block is 24 bytes");

void pack(const uint8_t* q, BlockQ5_1& b) {
  uint32_t qh = 0;
  for (int j = 0; j < kQK / 2; ++j) {
    const uint8_t lo = q[j], hi = q[j + kQK / 2];
    b.qs[j] = uint8_t((lo & 0x0f) | ((hi & 0x0f) << 4));
    qh |= uint32_t((lo >> 4) & 1) << j;
    qh |= uint32_t((hi >> 4) & 1) << (j + kQK / 2);
  }
  std::memcpy(b.qh, &qh, sizeof qh);
}

void dequantize(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / kQK; ++i) {
    const auto b = load_block<BlockQ5_1>(src, i);
    const float d = f16_to_f32(b.d);
    const float m = f16_to_f32(b.m);
    uint32_t qh;
    std::memcpy(&qh, b.qh, sizeof qh);
    float* y = dst + i * kQK;
    for (int j = 0; j < kQK / 2; ++j) {
      const int lo = (b.qs[j] & 0x0f) | int(((qh >> j) & 1) << 4);
      const int hi = (b.qs[j] >> 4) | int(((qh >> (j + kQK / 2)) & 1) << 4);
      y[j] = float(lo) * d + m;
      y[j + kQK / 2] = float(hi) * d + m;
    }
  }
}

BlockQ5_1 quantize_block(const float* x, const float* qw, float sigma2) {
  uint8_t q[kQK];
  float min = 0;
  const float d = qw ? importance_asym_fit(x, qw, sigma2, kQK, 31, q, &min) : plain_asym_fit(x, kQK, 31, q, &min);
  BlockQ5_1 b;
  b.d = f32_to_f16(d);
  b.m = f32_to_f16(min);
  pack(q, b);
  return b;
}

size_t quantize(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                const float* importance) {
  return quantize_rows<BlockQ5_1, kQK>(src, dst, nrows, n_per_row, importance, quantize_block);
}

}  // namespace

Codec q5_1_codec() {
  Codec c{GgmlType::Q5_1, "q5_1", kQK, sizeof(BlockQ5_1), dequantize, quantize, ActFormat::Q8_0};
  c.grid = &LegacyGrid<BlockQ5_1, kQK, 0, 31, 0, true, quantize_block, five_bit_codes<BlockQ5_1>, pack>::ops;
  return c;
}

}  // namespace imq::quant
