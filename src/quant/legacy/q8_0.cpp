// Q8_0: blocks of 32 weights, one f16 scale and signed 8-bit codes (spec g.3).
//
//   offset 0        2                                 34
//          +--------+---------------------------------+
//          | d  f16 | qs[32] int8, element j = qs[j]  |
//          +--------+---------------------------------+
//   x[j] = d * qs[j]
//
// d = max|x| / 127, q = roundf(x / d) (half away from zero). ggml ignores the imatrix for Q8_0,
// so importance is accepted and not used.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "quant/block_io.h"
#include "quant/legacy/codecs.h"
#include "quant/legacy/grid.h"

namespace imq::quant {
namespace {

constexpr int kQK = 32;

struct BlockQ8_0 {
  uint16_t d;       // f16 scale
  int8_t qs[kQK];   // codes
};
static_assert(sizeof(BlockQ8_0) == 34, "Q8_0 block is 34 bytes");

void dequantize(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / kQK; ++i) {
    const auto b = load_block<BlockQ8_0>(src, i);
    const float d = f16_to_f32(b.d);
    float* y = dst + i * kQK;
    for (int j = 0; j < kQK; ++j) y[j] = float(b.qs[j]) * d;
  }
}

// roundf (ties away from zero) for |v| < 2^31, inline: v - trunc(v) is exact in float.
inline int round_half_away(float v) {
  const int i = int(v);
  const float frac = v - float(i);
  return frac >= 0.5f ? i + 1 : frac <= -0.5f ? i - 1 : i;
}

BlockQ8_0 quantize_block(const float* x) {
  float amax = 0;
  for (int j = 0; j < kQK; ++j) {
    const float ax = std::fabs(x[j]);
    amax = amax > ax ? amax : ax;  // as ggml's MAX(), also for NaN
  }
  const float d = amax / 127.0f;
  const float id = d != 0 ? 1.0f / d : 0.0f;
  BlockQ8_0 b;
  b.d = f32_to_f16(d);
  for (int j = 0; j < kQK; ++j) b.qs[j] = int8_t(round_half_away(x[j] * id));
  return b;
}

// The grid's hooks: importance does not change the Q8_0 scale (as above).
BlockQ8_0 fit_block(const float* x, const float* /*qw*/, float /*sigma2*/) { return quantize_block(x); }
void codes(const BlockQ8_0& b, int8_t* q) { std::copy(b.qs, b.qs + kQK, q); }
void pack_codes(const uint8_t* q, BlockQ8_0& b) { std::memcpy(b.qs, q, kQK); }

size_t quantize(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                const float* /*importance*/) {
  const int64_t n_blocks = nrows * (n_per_row / kQK);
  for (int64_t i = 0; i < n_blocks; ++i) store_block(dst, i, quantize_block(src + i * kQK));
  return size_t(n_blocks) * sizeof(BlockQ8_0);
}

}  // namespace

Codec q8_0_codec() {
  Codec c{GgmlType::Q8_0, "q8_0", kQK, sizeof(BlockQ8_0), dequantize, quantize, ActFormat::Q8_0};
  c.grid = &LegacyGrid<BlockQ8_0, kQK, -128, 127, 0, false, fit_block, codes, pack_codes>::ops;
  return c;
}

}  // namespace imq::quant
