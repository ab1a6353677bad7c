// Q4_K: super-blocks of 256 weights in 8 sub-blocks of 32, 4-bit codes with a 6-bit scale and
// a 6-bit min per sub-block (spec g.3).
//
//   offset 0        2         4              16                                 144
//          +--------+---------+--------------+----------------------------------+
//          | d  f16 | dmin f16| scales[12]   | qs[128]                          |
//          +--------+---------+--------------+----------------------------------+
//   scales (sub-block j = 0..7, 6-bit scale sc_j and min m_j):
//     j < 4:  sc_j = scales[j] & 63,   m_j = scales[j + 4] & 63
//     j >= 4: sc_j = (scales[j + 4] & 15) | (scales[j - 4] >> 6) << 4
//             m_j  = (scales[j + 4] >> 4) | (scales[j] >> 6) << 4
//   qs: for c = 0..3, l = 0..31: low nibble of qs[32c + l] = element 64c + l (sub-block 2c),
//       high nibble = element 64c + 32 + l (sub-block 2c + 1)
//   x[e] = d * sc_j * q[e] - dmin * m_j,   q in 0..15
//
// Without importance: w = rms(sub-block) + |x|, ASYM-REF(32, 15, -1.0, 0.1, 20, squared);
// codes min(63, round(63 / max * s)), d = max_scale / 63, dmin = max_min / 63.
// With importance: sigma2 = 2 * mean(x^2) over the super-block, w = qw * sqrt(sigma2 + x^2),
// ASYM-IM(32, 15, -0.9, 0.05, 36, squared); d, dmin from POS(8, 63, ., sum of w per sub-block).
// Both paths: k4_quantize_super_block (search.cpp).
#include "core/fp16.h"
#include "quant/kquants/kquants.h"

namespace imq::quant {

void quantize_block_q4_k(const float* x, const float* qw, BlockQ4K* y) {
  uint8_t L[kQK_K];
  k4_quantize_super_block(x, qw, 15, -1.f, 0.1f, 20, L, y->scales, &y->d, &y->dmin);
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l)
      y->qs[32 * c + l] = uint8_t(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
}

void q4_k_codes(const BlockQ4K& b, uint8_t q[256]) {
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) {
      q[64 * c + l] = b.qs[32 * c + l] & 15;
      q[64 * c + 32 + l] = b.qs[32 * c + l] >> 4;
    }
}

void dequantize_block_q4_k(const BlockQ4K& b, float* y) {
  const float d = f16_to_f32(b.d), dmin = f16_to_f32(b.dmin);
  uint8_t q[kQK_K];
  q4_k_codes(b, q);
  for (int j = 0; j < 8; ++j) {  // sub-blocks of 32
    uint8_t sc, m;
    k4_scale_min(b.scales, j, &sc, &m);
    const float dj = d * float(sc), mj = dmin * float(m);
    for (int e = 32 * j; e < 32 * j + 32; ++e) y[e] = dj * float(q[e]) - mj;
  }
}

Codec q4_k_codec() {
  return {GgmlType::Q4_K, "q4_K", kQK_K, sizeof(BlockQ4K),
          dequantize_blocks<BlockQ4K, dequantize_block_q4_k>,
          quantize_rows<BlockQ4K, quantize_block_q4_k>, ActFormat::Q8_K};
}

}  // namespace imq::quant
