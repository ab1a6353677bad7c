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
#include "quant/legacy/search.h"

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

BlockQ4_0 quantize_block_plain(const float* x) {
  float amax = 0, max = 0;
  for (int j = 0; j < kQK; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  const float d = max / -8.0f;
  const float id = d != 0 ? 1.0f / d : 0.0f;
  uint8_t q[kQK];
  for (int j = 0; j < kQK; ++j)
    q[j] = uint8_t(std::min(15, int(int8_t(int(x[j] * id + 8.5f)))));
  BlockQ4_0 b;
  b.d = f32_to_f16(d);
  pack(q, b);
  return b;
}

BlockQ4_0 quantize_block_importance(const float* x, const float* qw, float sigma2) {
  float w[kQK];
  importance_weights(x, qw, sigma2, kQK, w);
  uint8_t q[kQK];
  const float d = sym_scale_search(kQK, 8, x, w, q);
  BlockQ4_0 b;
  b.d = f32_to_f16(d);
  pack(q, b);
  return b;
}

size_t quantize(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                const float* importance) {
  const int64_t nb = n_per_row / kQK;
  for (int64_t r = 0; r < nrows; ++r) {
    const float* x = src + r * n_per_row;
    const float sigma2 = importance ? row_sigma2(x, n_per_row) : 0.0f;
    for (int64_t i = 0; i < nb; ++i) {
      const BlockQ4_0 b = importance
                              ? quantize_block_importance(x + i * kQK, importance + i * kQK, sigma2)
                              : quantize_block_plain(x + i * kQK);
      store_block(dst, r * nb + i, b);
    }
  }
  return size_t(nrows * nb) * sizeof(BlockQ4_0);
}

}  // namespace

Codec q4_0_codec() {
  return {uint32_t(GgmlType::Q4_0), "q4_0", kQK, sizeof(BlockQ4_0), dequantize, quantize};
}

}  // namespace imq::quant
