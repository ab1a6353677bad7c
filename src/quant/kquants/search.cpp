// Helper searches of the K-quants (spec g.5) and the scale selection shared by Q4_K and Q5_K
// (spec g.6). Written to reproduce ggml's float32 arithmetic exactly: left-to-right
// evaluation with one rounding per operation (`w * x * l` is `(w * x) * l`), float literals,
// no FMA (-ffp-contract=off), the same loop order, and the same integer storage types (codes
// kept in uint8 wrap around exactly where ggml's do).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "quant/kquants/kquants.h"
#include "quant/signed_absmax.h"

namespace imq::quant {

float asym_scale_search_ref(int n, int nmax, const float* x, const float* w, uint8_t* codes,
                            float* neg_min, float rmin, float rdelta, int nstep, bool use_mad) {
  // make_qkx2_quants differs from make_qkx3_quants only by its degenerate-range test
  // (max == min instead of max <= min); with min forced <= 0 and max >= x[0] >= min the two
  // tests agree for every input, NaNs included. With w given the weights are the same too.
  return asym_scale_search_im(n, nmax, x, w, codes, neg_min, rmin, rdelta, nstep, use_mad);
}

float pos_scale_search(int n, int nmax, const float* x, const float* w, uint8_t* L) {
  float max = 0;
  for (int i = 0; i < n; ++i) max = max > x[i] ? max : x[i];
  if (max < kGroupMaxEps) {
    std::memset(L, 0, size_t(n));
    return 0.0f;
  }
  // Grid search: the starting scale max/nmax and 8 neighbours, lowest weighted MSE wins.
  float iscale = float(nmax) / max;
  for (int i = 0; i < n; ++i) L[i] = uint8_t(nearest_int(iscale * x[i]));
  const float scale = 1 / iscale;
  float best_mse = 0;
  for (int i = 0; i < n; ++i) {
    const float diff = x[i] - scale * float(L[i]);
    best_mse += w[i] * diff * diff;
  }
  for (int t = -4; t <= 4; ++t) {
    if (t == 0) continue;
    const float iscale_t = (0.1f * float(t) + float(nmax)) / max;
    const float scale_t = 1 / iscale_t;
    float mse = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::min(nmax, nearest_int(iscale_t * x[i]));
      const float diff = x[i] - scale_t * float(l);
      mse += w[i] * diff * diff;
    }
    if (mse < best_mse) {
      best_mse = mse;
      iscale = iscale_t;
    }
  }
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::min(nmax, nearest_int(iscale * x[i]));
    L[i] = uint8_t(l);
    sumlx += w[i] * x[i] * float(l);
    suml2 += w[i] * float(l) * float(l);
  }
  // Coordinate descent: move one code at a time to its LS-optimal value given the others,
  // keep the move iff it raises sumlx^2 / suml2.
  for (int pass = 0; pass < 5; ++pass) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      const float li = float(L[i]);
      float slx = sumlx - w[i] * x[i] * li;
      float sl2 = suml2 - w[i] * li * li;
      if (slx > 0 && sl2 > 0) {
        const int new_l = std::min(nmax, nearest_int(x[i] * sl2 / slx));
        if (new_l != int(L[i])) {
          slx += w[i] * x[i] * float(new_l);
          sl2 += w[i] * float(new_l) * float(new_l);
          if (slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = uint8_t(new_l);
            sumlx = slx;
            suml2 = sl2;
            ++n_changed;
          }
        }
      }
    }
    if (!n_changed) break;
  }
  return sumlx / suml2;
}

float q3_ref_scale_search(int n, int nmax, const float* x, uint8_t* codes) {
  const float max = signed_absmax(x, n);
  if (std::fabs(max) < kGroupMaxEps) {
    std::memset(codes, 0, size_t(n));
    return 0.0f;
  }
  int8_t L[kQK_K];
  const float iscale = -float(nmax) / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::max(-nmax, std::min(nmax - 1, nearest_int(iscale * x[i])));
    L[i] = int8_t(l);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * float(l);
    suml2 += w * float(l) * float(l);
  }
  for (int pass = 0; pass < 5; ++pass) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      float slx = sumlx - w * x[i] * float(L[i]);
      if (slx > 0) {
        float sl2 = suml2 - w * float(L[i]) * float(L[i]);
        const int new_l = std::max(-nmax, std::min(nmax - 1, nearest_int(x[i] * sl2 / slx)));
        if (new_l != L[i]) {
          slx += w * x[i] * float(new_l);
          sl2 += w * float(new_l) * float(new_l);
          if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = int8_t(new_l);
            sumlx = slx;
            suml2 = sl2;
            ++n_changed;
          }
        }
      }
    }
    if (!n_changed) break;
  }
  for (int i = 0; i < n; ++i) codes[i] = uint8_t(L[i] + nmax);
  return sumlx / suml2;
}

void k4_quantize_super_block(const float* x, const float* qw, int nmax, float ref_rmin,
                             float ref_rdelta, int ref_nstep, uint8_t L[256], uint8_t scales[12],
                             uint16_t* d, uint16_t* dmin) {
  constexpr int kSub = 32, kNumSub = kQK_K / kSub;
  float sub_scale[kNumSub], sub_min[kNumSub];
  uint8_t ls[kNumSub], lm[kNumSub];
  float w[kSub];
  if (!qw) {
    // Without imatrix: w = rms(sub-block) + |x|, ASYM-REF, codes relative to the largest
    // scale and min (63 steps each).
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < kNumSub; ++j) {
      const float* xs = x + kSub * j;
      float sum_x2 = 0;
      for (int l = 0; l < kSub; ++l) sum_x2 += xs[l] * xs[l];
      const float av_x = std::sqrt(sum_x2 / float(kSub));
      for (int l = 0; l < kSub; ++l) w[l] = av_x + std::fabs(xs[l]);
      sub_scale[j] = asym_scale_search_ref(kSub, nmax, xs, w, L + kSub * j, &sub_min[j], ref_rmin,
                                           ref_rdelta, ref_nstep, false);
      if (sub_scale[j] > max_scale) max_scale = sub_scale[j];
      if (sub_min[j] > max_min) max_min = sub_min[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < kNumSub; ++j) {
      ls[j] = uint8_t(nearest_int(inv_scale * sub_scale[j]));
      lm[j] = uint8_t(nearest_int(inv_min * sub_min[j]));
    }
    *d = f32_to_f16(max_scale / 63.f);
    *dmin = f32_to_f16(max_min / 63.f);
  } else {
    // With imatrix: w = qw * sqrt(sigma2 + x^2), sigma2 = 2 * mean(x^2) over the super-block;
    // ASYM-IM per sub-block, then POS picks the 6-bit scale and min codes.
    float sum_x2 = 0;
    for (int l = 0; l < kQK_K; ++l) sum_x2 += x[l] * x[l];
    const float sigma2 = 2 * sum_x2 / float(kQK_K);
    float sw[kNumSub];
    for (int j = 0; j < kNumSub; ++j) {
      const float* xs = x + kSub * j;
      sw[j] = sub_block_weights(xs, qw + kSub * j, sigma2, kSub, w);
      sub_scale[j] = asym_scale_search_im(kSub, nmax, xs, w, L + kSub * j, &sub_min[j], -0.9f,
                                          0.05f, 36, false);
    }
    *d = f32_to_f16(pos_scale_search(kNumSub, 63, sub_scale, sw, ls));
    *dmin = f32_to_f16(pos_scale_search(kNumSub, 63, sub_min, sw, lm));
  }
  // Pack: sub-blocks 0..3 in the low 6 bits of bytes 0..3 (scale) and 4..7 (min); 4..7 in the
  // nibbles of bytes 8..11 with their top 2 bits in the top bits of bytes 0..7.
  for (int j = 0; j < kNumSub; ++j) {
    const uint8_t s = std::min<uint8_t>(63, ls[j]);
    const uint8_t m = std::min<uint8_t>(63, lm[j]);
    if (j < 4) {
      scales[j] = s;
      scales[j + 4] = m;
    } else {
      scales[j + 4] = uint8_t((s & 15) | ((m & 15) << 4));
      scales[j - 4] |= uint8_t((s >> 4) << 6);
      scales[j] |= uint8_t((m >> 4) << 6);
    }
  }
  // Requantize with the stored (f16) scales; a sub-block whose scale is 0 keeps its codes.
  const float df = f16_to_f32(*d), mf = f16_to_f32(*dmin);
  for (int j = 0; j < kNumSub; ++j) {
    uint8_t sc, m;
    k4_scale_min(scales, j, &sc, &m);
    const float dd = df * float(sc);
    if (dd == 0) continue;
    const float dm = mf * float(m);
    for (int ii = 0; ii < kSub; ++ii) {
      const int l = nearest_int((x[kSub * j + ii] + dm) / dd);
      L[kSub * j + ii] = uint8_t(std::max(0, std::min(nmax, l)));
    }
  }
}

}  // namespace imq::quant
