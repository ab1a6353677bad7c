// Q2_K: super-blocks of 256 weights in 16 sub-blocks of 16, 2-bit codes with a 4-bit scale
// and a 4-bit min per sub-block (spec g.3).
//
//   offset 0             16                     80        82        84
//          +-------------+----------------------+---------+---------+
//          | scales[16]  | qs[64]               | d   f16 | dmin f16|
//          +-------------+----------------------+---------+---------+
//   scales[s]: bits 0-3 scale code sc_s, bits 4-7 min code m_s of sub-block s (= e / 16)
//   qs: two halves h of 128 elements; byte qs[32h + l], bits 2k..2k+1 = q of element
//       128h + 32k + l   (k = 0..3, l = 0..31)
//   x[e] = d * sc_s * q[e] - dmin * m_s,   q in 0..3
//
// Without importance: w = |x|, ASYM-REF(16, 3, -0.5, 0.1, 15, mad) per sub-block; codes
// round(15 / max * s), d = max_scale / 15 (same for the mins with dmin).
// With importance: sigma2 = mean(x^2) over the super-block (no factor 2), w = qw*sqrt(sigma2+x^2),
// ASYM-IM(16, 3, -0.9, 0.05, 36, squared); d and dmin from POS(16, 15, ., sum of w per sub-block).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "quant/kquants/kquants.h"

namespace imq::quant {
namespace {

constexpr int kSub = 16, kNumSub = kQK_K / kSub;

// Chooses scale/min codes and d/dmin without importance.
void choose_scales_ref(const float* x, uint8_t* L, BlockQ2K* y) {
  float sub_scale[kNumSub], sub_min[kNumSub], w[kSub];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < kNumSub; ++j) {
    const float* xs = x + kSub * j;
    for (int l = 0; l < kSub; ++l) w[l] = std::fabs(xs[l]);
    sub_scale[j] = asym_scale_search_ref(kSub, 3, xs, w, L + kSub * j, &sub_min[j], -0.5f, 0.1f,
                                         15, true);
    if (sub_scale[j] > max_scale) max_scale = sub_scale[j];
    if (sub_min[j] > max_min) max_min = sub_min[j];
  }
  if (max_scale > 0) {
    const float iscale = 15.f / max_scale;
    for (int j = 0; j < kNumSub; ++j) y->scales[j] = uint8_t(nearest_int(iscale * sub_scale[j]));
    y->d = f32_to_f16(max_scale / 15.f);
  } else {
    std::memset(y->scales, 0, sizeof y->scales);
    y->d = f32_to_f16(0.f);
  }
  if (max_min > 0) {
    const float iscale = 15.f / max_min;
    for (int j = 0; j < kNumSub; ++j)
      y->scales[j] |= uint8_t(nearest_int(iscale * sub_min[j]) << 4);
    y->dmin = f32_to_f16(max_min / 15.f);
  } else {
    y->dmin = f32_to_f16(0.f);
  }
}

// Chooses scale/min codes and d/dmin with importance.
void choose_scales_im(const float* x, const float* qw, uint8_t* L, BlockQ2K* y) {
  float sub_scale[kNumSub], sub_min[kNumSub], sw[kNumSub], w[kSub];
  uint8_t ls[kNumSub], lm[kNumSub];
  float sum_x2 = 0;
  for (int l = 0; l < kQK_K; ++l) sum_x2 += x[l] * x[l];
  const float sigma2 = sum_x2 / float(kQK_K);
  for (int j = 0; j < kNumSub; ++j) {
    const float* xs = x + kSub * j;
    sw[j] = sub_block_weights(xs, qw + kSub * j, sigma2, kSub, w);
    sub_scale[j] = asym_scale_search_im(kSub, 3, xs, w, L + kSub * j, &sub_min[j], -0.9f, 0.05f,
                                        36, false);
  }
  y->d = f32_to_f16(pos_scale_search(kNumSub, 15, sub_scale, sw, ls));
  y->dmin = f32_to_f16(pos_scale_search(kNumSub, 15, sub_min, sw, lm));
  for (int j = 0; j < kNumSub; ++j) y->scales[j] = uint8_t(ls[j] | (lm[j] << 4));
}

}  // namespace

void quantize_block_q2_k(const float* x, const float* qw, BlockQ2K* y) {
  uint8_t L[kQK_K];
  if (qw) {
    choose_scales_im(x, qw, L, y);
  } else {
    choose_scales_ref(x, L, y);
  }
  // Requantize with the stored (f16) values; a sub-block with scale 0 keeps its search codes.
  const float d = f16_to_f32(y->d), dmin = f16_to_f32(y->dmin);
  for (int j = 0; j < kNumSub; ++j) {
    const float dl = d * float(y->scales[j] & 15);
    if (dl == 0) continue;
    const float ml = dmin * float(y->scales[j] >> 4);
    for (int ii = 0; ii < kSub; ++ii) {
      const int l = nearest_int((x[kSub * j + ii] + ml) / dl);
      L[kSub * j + ii] = uint8_t(std::max(0, std::min(3, l)));
    }
  }
  for (int h = 0; h < 2; ++h)
    for (int l = 0; l < 32; ++l) {
      const uint8_t* q = L + 128 * h + l;
      y->qs[32 * h + l] = uint8_t(q[0] | (q[32] << 2) | (q[64] << 4) | (q[96] << 6));
    }
}

void dequantize_block_q2_k(const BlockQ2K& b, float* y) {
  const float d = f16_to_f32(b.d), dmin = f16_to_f32(b.dmin);
  for (int s = 0; s < kNumSub; ++s) {  // sub-block s: half s / 8, bit pair (s % 8) / 2
    const float dl = d * float(b.scales[s] & 15);
    const float ml = dmin * float(b.scales[s] >> 4);
    const uint8_t* q = b.qs + 32 * (s / 8) + 16 * (s % 2);
    const int shift = 2 * ((s % 8) / 2);
    for (int l = 0; l < kSub; ++l) y[kSub * s + l] = dl * float((q[l] >> shift) & 3) - ml;
  }
}

Codec q2_k_codec() {
  return {GgmlType::Q2_K, "q2_K", kQK_K, sizeof(BlockQ2K),
          dequantize_blocks<BlockQ2K, dequantize_block_q2_k>,
          quantize_rows<BlockQ2K, quantize_block_q2_k>, ActFormat::Q8_K};
}

}  // namespace imq::quant
