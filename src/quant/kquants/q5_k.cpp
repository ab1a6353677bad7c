// Q5_K: super-blocks of 256 weights in 8 sub-blocks of 32, 5-bit codes with a 6-bit scale and
// a 6-bit min per sub-block (spec g.3).
//
//   offset 0        2         4              16            48                      176
//          +--------+---------+--------------+-------------+-----------------------+
//          | d  f16 | dmin f16| scales[12]   | qh[32]      | qs[128]               |
//          +--------+---------+--------------+-------------+-----------------------+
//   scales: as Q4_K (k4_scale_min). Low 4 bits: as Q4_K from qs (c = 0..3, l = 0..31:
//   element 64c + l in the low nibble of qs[32c + l], element 64c + 32 + l in the high one).
//   5th bit: element 64c + l is bit 2c of qh[l], element 64c + 32 + l is bit 2c + 1 of qh[l].
//   x[e] = d * sc_j * q[e] - dmin * m_j,   q in 0..31
//
// Without importance: w = rms(sub-block) + |x|, ASYM-REF(32, 31, -0.5, 0.1, 15, squared),
// codes relative to the largest scale / min (63 steps). With importance: as Q4_K with nmax 31.
// Both paths: k4_quantize_super_block (search.cpp).
#include "core/fp16.h"
#include "quant/kquants/kquants.h"

namespace imq::quant {

void quantize_block_q5_k(const float* x, const float* qw, BlockQ5K* y) {
  uint8_t L[kQK_K];
  k4_quantize_super_block(x, qw, 31, -0.5f, 0.1f, 15, L, y->scales, &y->d, &y->dmin);
  for (int l = 0; l < 32; ++l) y->qh[l] = 0;
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      const int lo = L[64 * c + l], hi = L[64 * c + 32 + l];
      y->qh[l] |= uint8_t(((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
      y->qs[32 * c + l] = uint8_t((lo & 15) | ((hi & 15) << 4));
    }
  }
}

void dequantize_block_q5_k(const BlockQ5K& b, float* y) {
  const float d = f16_to_f32(b.d), dmin = f16_to_f32(b.dmin);
  for (int c = 0; c < 4; ++c) {
    uint8_t sc, m;
    k4_scale_min(b.scales, 2 * c, &sc, &m);
    const float d1 = d * float(sc), m1 = dmin * float(m);
    k4_scale_min(b.scales, 2 * c + 1, &sc, &m);
    const float d2 = d * float(sc), m2 = dmin * float(m);
    const uint8_t* q = b.qs + 32 * c;
    for (int l = 0; l < 32; ++l) {
      const int q1 = (q[l] & 15) | (((b.qh[l] >> (2 * c)) & 1) << 4);
      const int q2 = (q[l] >> 4) | (((b.qh[l] >> (2 * c + 1)) & 1) << 4);
      y[64 * c + l] = d1 * float(q1) - m1;
      y[64 * c + 32 + l] = d2 * float(q2) - m2;
    }
  }
}

Codec q5_k_codec() {
  return {GgmlType::Q5_K, "q5_K", kQK_K, sizeof(BlockQ5K),
          dequantize_blocks<BlockQ5K, dequantize_block_q5_k>,
          quantize_rows<BlockQ5K, quantize_block_q5_k>, ActFormat::Q8_K};
}

}  // namespace imq::quant
