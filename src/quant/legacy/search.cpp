#include "quant/legacy/search.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "quant/signed_absmax.h"

namespace imq::quant {

namespace {

inline float weight_at(const float* w, const float* x, int i) { return w ? w[i] : x[i] * x[i]; }

// Weighted sums of one SYM candidate: codes clamp(round(iscale * x), -nmax, nmax - 1).
struct SymSums {
  float sumlx = 0;
  float suml2 = 0;
};

SymSums sym_candidate(int n, int nmax, const float* x, const float* w, float iscale) {
  SymSums s;
  for (int i = 0; i < n; ++i) {
    int l = nearest_int(iscale * x[i]);
    l = std::max(-nmax, std::min(nmax - 1, l));
    const float wi = weight_at(w, x, i);
    s.sumlx += wi * x[i] * float(l);
    s.suml2 += wi * float(l) * float(l);
  }
  return s;
}

void sym_codes(int n, int nmax, const float* x, float iscale, uint8_t* codes) {
  for (int i = 0; i < n; ++i) {
    const int l = nearest_int(iscale * x[i]);
    codes[i] = uint8_t(nmax + std::max(-nmax, std::min(nmax - 1, l)));
  }
}

}  // namespace

float sym_scale_search(int n, int nmax, const float* x, const float* w, uint8_t* codes) {
  const float max = signed_absmax(x, n);
  if (std::fabs(max) < kGroupMaxEps) {
    std::memset(codes, 0, size_t(n));
    return 0.0f;
  }
  float iscale = -float(nmax) / max;
  sym_codes(n, nmax, x, iscale, codes);
  SymSums s = sym_candidate(n, nmax, x, w, iscale);
  float scale = s.suml2 != 0 ? s.sumlx / s.suml2 : 0.0f;
  float best = scale * s.sumlx;
  for (int t = -9; t <= 9; ++t) {
    if (t == 0) continue;
    iscale = -(float(nmax) + 0.1f * float(t)) / max;
    s = sym_candidate(n, nmax, x, w, iscale);
    if (s.suml2 > 0 && s.sumlx * s.sumlx > best * s.suml2) {
      sym_codes(n, nmax, x, iscale, codes);
      scale = s.sumlx / s.suml2;
      best = scale * s.sumlx;
    }
  }
  return scale;
}

float asym_scale_search_im(int n, int nmax, const float* x, const float* w, uint8_t* codes,
                           float* neg_min, float rmin, float rdelta, int nstep, bool use_mad) {
  float min = x[0], max = x[0];
  float sum_w = weight_at(w, x, 0);
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float wi = weight_at(w, x, i);
    sum_w += wi;
    sum_x += wi * x[i];
  }
  if (min > 0) min = 0;
  if (max <= min) {
    std::memset(codes, 0, size_t(n));
    *neg_min = -min;
    return 0.0f;
  }
  auto error_of = [&](float scale, float offset, const uint8_t* l) {
    float err = 0;
    for (int i = 0; i < n; ++i) {
      float diff = scale * float(l[i]) + offset - x[i];
      diff = use_mad ? std::fabs(diff) : diff * diff;
      err += weight_at(w, x, i) * diff;
    }
    return err;
  };

  float iscale = float(nmax) / (max - min);
  float scale = 1 / iscale;
  for (int i = 0; i < n; ++i) {
    const int l = nearest_int(iscale * (x[i] - min));
    codes[i] = uint8_t(std::max(0, std::min(nmax, l)));
  }
  float best_err = error_of(scale, min, codes);

  uint8_t aux[256], prev[256] = {};
  for (int t = 0; t <= nstep; ++t) {
    // `min` is the best offset so far: a winning candidate changes the range of later ones.
    iscale = (rmin + rdelta * float(t) + float(nmax)) / (max - min);
    // The fit and its error depend on the codes only (not on min or iscale): a candidate with
    // the codes of the one evaluated before cannot be strictly better, so skipping it changes
    // nothing. Neighbouring candidates often share codes (about half of them for Q4_K). The
    // comparison runs in the rounding loop (a libc memcmp call per candidate cost 10 % of a
    // Q4_K_M quantization).
    bool same = t > 0;
    for (int i = 0; i < n; ++i) {
      const int l = nearest_int(iscale * (x[i] - min));
      aux[i] = uint8_t(std::max(0, std::min(nmax, l)));
      same &= aux[i] == prev[i];
    }
    if (same) continue;
    std::memcpy(prev, aux, size_t(n));
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = aux[i];
      const float wi = weight_at(w, x, i);
      sum_l += wi * float(l);
      sum_l2 += wi * float(l) * float(l);
      sum_xl += wi * float(l) * x[i];
    }
    const float det = sum_w * sum_l2 - sum_l * sum_l;
    if (!(det > 0)) continue;
    float this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
    float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
    if (this_min > 0) {
      this_min = 0;
      this_scale = sum_xl / sum_l2;
    }
    const float err = error_of(this_scale, this_min, aux);
    if (err < best_err) {
      std::memcpy(codes, aux, size_t(n));
      best_err = err;
      scale = this_scale;
      min = this_min;
    }
  }
  *neg_min = -min;
  return scale;
}

float row_sigma2(const float* x, int64_t n_per_row) {
  float sum_x2 = 0;
  for (int64_t j = 0; j < n_per_row; ++j) sum_x2 += x[j] * x[j];
  return sum_x2 / float(n_per_row);
}

void importance_weights(const float* x, const float* qw, float sigma2, int n, float* w) {
  for (int j = 0; j < n; ++j) w[j] = qw[j] * std::sqrt(sigma2 + x[j] * x[j]);
}

}  // namespace imq::quant
