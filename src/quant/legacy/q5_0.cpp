// Q5_0: blocks of 32 weights, one f16 scale and 5-bit codes centred on 16 (spec g.3).
//
//   offset 0        2                 6                                            22
//          +--------+-----------------+--------------------------------------------+
//          | d  f16 | qh u32 LE       | qs[16]: low nibble = q[j], high = q[j+16]  |
//          +--------+-----------------+--------------------------------------------+
//   bit j of qh = bit 4 of q[j] (j = 0..31);  x[j] = d * (q[j] - 16),  q in 0..31
//
// Without importance: d = -(signed max) / 16, q = min(31, trunc(x/d + 16.5)).
// With importance: row-wide sigma2, w = qw * sqrt(sigma2 + x^2), SYM search with nmax 16.
#include <algorithm>
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

struct BlockQ5_0 {
  uint16_t d;             // f16 scale
  uint8_t qh[4];          // fifth bits, little-endian u32: bit j belongs to element j
  uint8_t qs[kQK / 2];    // low four bits: element j low nibble, j + 16 high nibble
};
static_assert(sizeof(BlockQ5_0) == 22, "Q5_0 block is 22 bytes");

void pack(const uint8_t* q, BlockQ5_0& b) {
  uint32_t qh = 0;
  for (int j = 0; j < kQK / 2; ++j) {
    const uint8_t lo = q[j], hi = q[j + kQK / 2];
    b.qs[j] = uint8_t((lo & 0x0f) | ((hi & 0x0f) << 4));
    qh |= uint32_t(lo >> 4) << j;
    qh |= uint32_t(hi >> 4) << (j + kQK / 2);
  }
  std::memcpy(b.qh, &qh, sizeof qh);
}

void dequantize(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / kQK; ++i) {
    const auto b = load_block<BlockQ5_0>(src, i);
    const float d = f16_to_f32(b.d);
    uint32_t qh;
    std::memcpy(&qh, b.qh, sizeof qh);
    float* y = dst + i * kQK;
    for (int j = 0; j < kQK / 2; ++j) {
      const int lo = (b.qs[j] & 0x0f) | int(((qh >> j) & 1) << 4);
      const int hi = (b.qs[j] >> 4) | int(((qh >> (j + kQK / 2)) & 1) << 4);
      y[j] = float(lo - 16) * d;
      y[j + kQK / 2] = float(hi - 16) * d;
    }
  }
}

BlockQ5_0 quantize_block(const float* x, const float* qw, float sigma2) {
  uint8_t q[kQK];
  BlockQ5_0 b;
  b.d = f32_to_f16(qw ? importance_sym_fit(x, qw, sigma2, kQK, 16, q) : plain_sym_fit(x, kQK, 16, q));
  pack(q, b);
  return b;
}

size_t quantize(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                const float* importance) {
  return quantize_rows<BlockQ5_0, kQK>(src, dst, nrows, n_per_row, importance, quantize_block);
}

}  // namespace

Codec q5_0_codec() {
  Codec c{GgmlType::Q5_0, "q5_0", kQK, sizeof(BlockQ5_0), dequantize, quantize, ActFormat::Q8_0};
  c.grid = &LegacyGrid<BlockQ5_0, kQK, 0, 31, 16, false, quantize_block, five_bit_codes<BlockQ5_0>, pack>::ops;
  return c;
}

}  // namespace imq::quant
