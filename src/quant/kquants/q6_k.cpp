// Q6_K: super-blocks of 256 weights in 16 sub-blocks of 16, 6-bit codes with a signed 8-bit
// scale per sub-block (spec g.3).
//
//   offset 0                    128              192            208       210
//          +--------------------+----------------+--------------+---------+
//          | ql[128]            | qh[64]         | scales[16] i8| d   f16 |
//          +--------------------+----------------+--------------+---------+
//   halves h = 0, 1 of 128 elements use ql[64h ..], qh[32h ..]; for l = 0..31:
//     element 128h +      l: low nibble  of ql[64h + l],      bits 0-1 of qh[32h + l]
//     element 128h + 32 + l: low nibble  of ql[64h + 32 + l], bits 2-3 of qh[32h + l]
//     element 128h + 64 + l: high nibble of ql[64h + l],      bits 4-5 of qh[32h + l]
//     element 128h + 96 + l: high nibble of ql[64h + 32 + l], bits 6-7 of qh[32h + l]
//   x[e] = d * scales[e / 16] * (q[e] - 32),   q in 0..63
//
// Per sub-block SYM(16, 32) with w = x^2 (no importance) or w = qw (raw importance, no
// sqrt(sigma2 + x^2) factor); iscale = -128 / (signed largest scale), scale codes
// min(127, round(iscale * s)), d = 1 / iscale. A super-block whose scales are all ~0 is all zero.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "quant/kquants/kquants.h"
#include "quant/signed_absmax.h"

namespace imq::quant {
namespace {

constexpr int kSub = 16, kNumSub = kQK_K / kSub;

}  // namespace

void quantize_block_q6_k(const float* x, const float* qw, BlockQ6K* y) {
  uint8_t L[kQK_K];
  float sub_scale[kNumSub];
  for (int j = 0; j < kNumSub; ++j)
    sub_scale[j] =
        sym_scale_search(kSub, 32, x + kSub * j, qw ? qw + kSub * j : nullptr, L + kSub * j);
  const float max_scale = signed_absmax(sub_scale, kNumSub);
  if (std::fabs(max_scale) < kGroupMaxEps) {
    std::memset(y, 0, sizeof *y);
    y->d = f32_to_f16(0.f);
    return;
  }
  const float iscale = -128.f / max_scale;
  y->d = f32_to_f16(1 / iscale);
  for (int j = 0; j < kNumSub; ++j)
    y->scales[j] = int8_t(std::min(127, nearest_int(iscale * sub_scale[j])));
  // Requantize with the stored scales; a sub-block with scale 0 keeps its search codes.
  const float d_all = f16_to_f32(y->d);
  for (int j = 0; j < kNumSub; ++j) {
    const float d = d_all * float(y->scales[j]);
    if (d == 0) continue;
    for (int ii = 0; ii < kSub; ++ii) {
      const int l = nearest_int(x[kSub * j + ii] / d);
      L[kSub * j + ii] = uint8_t(std::max(-32, std::min(31, l)) + 32);
    }
  }
  for (int h = 0; h < 2; ++h) {
    const uint8_t* q = L + 128 * h;
    uint8_t* ql = y->ql + 64 * h;
    uint8_t* qh = y->qh + 32 * h;
    for (int l = 0; l < 32; ++l) {
      ql[l] = uint8_t((q[l] & 15) | ((q[l + 64] & 15) << 4));
      ql[l + 32] = uint8_t((q[l + 32] & 15) | ((q[l + 96] & 15) << 4));
      qh[l] = uint8_t((q[l] >> 4) | ((q[l + 32] >> 4) << 2) | ((q[l + 64] >> 4) << 4) |
                      ((q[l + 96] >> 4) << 6));
    }
  }
}

void q6_k_codes(const BlockQ6K& b, int8_t q[256]) {
  for (int h = 0; h < 2; ++h) {
    const uint8_t* ql = b.ql + 64 * h;
    const uint8_t* qh = b.qh + 32 * h;
    int8_t* qq = q + 128 * h;
    for (int l = 0; l < 32; ++l) {
      qq[l] = int8_t(((ql[l] & 15) | ((qh[l] & 3) << 4)) - 32);
      qq[l + 32] = int8_t(((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4)) - 32);
      qq[l + 64] = int8_t(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
      qq[l + 96] = int8_t(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
    }
  }
}

void dequantize_block_q6_k(const BlockQ6K& b, float* y) {
  const float d = f16_to_f32(b.d);
  int8_t q[kQK_K];
  q6_k_codes(b, q);
  for (int e = 0; e < kQK_K; ++e) y[e] = d * float(b.scales[e / 16]) * float(q[e]);  // scale per 16
}

Codec q6_k_codec() {
  return {GgmlType::Q6_K, "q6_K", kQK_K, sizeof(BlockQ6K),
          dequantize_blocks<BlockQ6K, dequantize_block_q6_k>,
          quantize_rows<BlockQ6K, quantize_block_q6_k>, ActFormat::Q8_K};
}

}  // namespace imq::quant
