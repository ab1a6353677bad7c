// Q3_K: super-blocks of 256 weights in 16 sub-blocks of 16, signed 3-bit codes with a 6-bit
// signed scale per sub-block (spec g.3).
//
//   offset 0             32                   96              108       110
//          +-------------+--------------------+---------------+---------+
//          | hmask[32]   | qs[64]             | scales[12]    | d   f16 |
//          +-------------+--------------------+---------------+---------+
//   low 2 bits of element e: as Q2_K (byte qs[32h + l], bit pair k for e = 128h + 32k + l)
//   high bit of element e:   bit e / 32 of hmask[e % 32]  (clear bit: subtract 4)
//   q[e] = low2 + 4 * hbit - 4                          in -4..3
//   6-bit scale code s_j, j = 0..15:
//     bits 0-3: low nibble of scales[j] (j < 8) / high nibble of scales[j - 8] (j >= 8)
//     bits 4-5: bits 2*(j/4) .. 2*(j/4)+1 of scales[8 + j % 4]
//   x[e] = d * (s_j - 32) * q[e],   j = e / 16
//
// Without importance: Q3-REF(16, 4) per sub-block; iscale = -32 / (signed largest scale),
// codes clamp(round(iscale * s), -32, 31) + 32, d = 1 / iscale.
// With importance: sigma2 = 2 * mean(x^2) over the super-block, w = qw * sqrt(sigma2 + x^2),
// SYM(16, 4, w) per sub-block; scale codes from SYM(16, 32, scales, sum of w per sub-block).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "quant/kquants/kquants.h"
#include "quant/signed_absmax.h"

namespace imq::quant {
namespace {

constexpr int kSub = 16, kNumSub = kQK_K / kSub;

// Chooses the scale codes and d without importance; L gets the search codes (0..7).
void choose_scales_ref(const float* x, uint8_t* L, BlockQ3K* y) {
  float sub_scale[kNumSub];
  for (int j = 0; j < kNumSub; ++j)
    sub_scale[j] = q3_ref_scale_search(kSub, 4, x + kSub * j, L + kSub * j);
  const float max_scale = signed_absmax(sub_scale, kNumSub);
  if (max_scale != 0) {
    const float iscale = -32.f / max_scale;
    uint8_t codes[kNumSub];
    for (int j = 0; j < kNumSub; ++j) {
      // ggml keeps the rounded value in an int8 before clamping.
      const int l = int8_t(nearest_int(iscale * sub_scale[j]));
      codes[j] = uint8_t(std::max(-32, std::min(31, l)) + 32);
    }
    q3_k_pack_scales(codes, y->scales);
    y->d = f32_to_f16(1 / iscale);
  } else {
    std::memset(y->scales, 0, sizeof y->scales);
    y->d = f32_to_f16(0.f);
  }
}

// Chooses the scale codes and d with importance; L gets the search codes (0..7).
void choose_scales_im(const float* x, const float* qw, uint8_t* L, BlockQ3K* y) {
  float sub_scale[kNumSub], sw[kNumSub], w[kSub];
  float sum_x2 = 0;
  for (int l = 0; l < kQK_K; ++l) sum_x2 += x[l] * x[l];
  const float sigma2 = 2 * sum_x2 / float(kQK_K);
  for (int j = 0; j < kNumSub; ++j) {
    const float* xs = x + kSub * j;
    sw[j] = sub_block_weights(xs, qw + kSub * j, sigma2, kSub, w);
    sub_scale[j] = sym_scale_search(kSub, 4, xs, w, L + kSub * j);
  }
  uint8_t codes[kNumSub];
  const float d = sym_scale_search(kNumSub, 32, sub_scale, sw, codes);
  q3_k_pack_scales(codes, y->scales);
  y->d = f32_to_f16(d);
}

}  // namespace

void q3_k_pack_scales(const uint8_t codes[16], uint8_t scales[12]) {
  std::memset(scales, 0, 12);
  for (int j = 0; j < kNumSub; ++j) {
    const int l = codes[j];
    if (j < 8) {
      scales[j] = uint8_t(l & 15);
    } else {
      scales[j - 8] |= uint8_t((l & 15) << 4);
    }
    scales[8 + j % 4] |= uint8_t((l >> 4) << (2 * (j / 4)));
  }
}

void q3_k_requantize_and_pack(const float* x, uint8_t L[256], BlockQ3K* y) {
  const float d_all = f16_to_f32(y->d);
  for (int j = 0; j < kNumSub; ++j) {
    const float d = d_all * float(q3_k_scale_code(y->scales, j) - 32);
    if (d == 0) continue;
    for (int ii = 0; ii < kSub; ++ii) {
      const int l = nearest_int(x[kSub * j + ii] / d);
      L[kSub * j + ii] = uint8_t(std::max(-4, std::min(3, l)) + 4);
    }
  }
  // High bits: element e goes to bit e / 32 of hmask[e % 32]; low bits packed as Q2_K.
  std::memset(y->hmask, 0, sizeof y->hmask);
  for (int e = 0; e < kQK_K; ++e) {
    if (L[e] > 3) {
      y->hmask[e % 32] |= uint8_t(1 << (e / 32));
      L[e] -= 4;
    }
  }
  for (int h = 0; h < 2; ++h)
    for (int l = 0; l < 32; ++l) {
      const uint8_t* q = L + 128 * h + l;
      y->qs[32 * h + l] = uint8_t(q[0] | (q[32] << 2) | (q[64] << 4) | (q[96] << 6));
    }
}

void quantize_block_q3_k(const float* x, const float* qw, BlockQ3K* y) {
  uint8_t L[kQK_K];
  if (qw) {
    choose_scales_im(x, qw, L, y);
  } else {
    choose_scales_ref(x, L, y);
  }
  q3_k_requantize_and_pack(x, L, y);
}

void dequantize_block_q3_k(const BlockQ3K& b, float* y) {
  const float d_all = f16_to_f32(b.d);
  for (int s = 0; s < kNumSub; ++s) {  // sub-block s: half s / 8, bit pair (s % 8) / 2
    const float dl = d_all * float(q3_k_scale_code(b.scales, s) - 32);
    const uint8_t* q = b.qs + 32 * (s / 8) + 16 * (s % 2);
    const uint8_t* hm = b.hmask + 16 * (s % 2);
    const int shift = 2 * ((s % 8) / 2);
    const int hbit = s / 2;  // = e / 32 for every element of the sub-block
    for (int l = 0; l < kSub; ++l) {
      const int low = (q[l] >> shift) & 3;
      const int high = (hm[l] >> hbit) & 1;
      y[kSub * s + l] = dl * float(low - (high ? 0 : 4));
    }
  }
}

Codec q3_k_codec() {
  return {GgmlType::Q3_K, "q3_K", kQK_K, sizeof(BlockQ3K),
          dequantize_blocks<BlockQ3K, dequantize_block_q3_k>,
          quantize_rows<BlockQ3K, quantize_block_q3_k>, ActFormat::Q8_K};
}

}  // namespace imq::quant
