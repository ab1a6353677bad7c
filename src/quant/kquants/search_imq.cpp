// The search engine of --search imq (search_imq.h), shared by Q2_K ... Q6_K through KShape.
//
// Starting from a decoded block (the reference one), each round:
//   1. with the element codes fixed, a weighted least-squares refit of every sub-block's
//      continuous scale a_j and offset b_j (x ~ a_j q - b_j; b_j >= 0 for the types with mins);
//   2. super-block scale candidates d: the current one, the least-squares d for the current
//      scale codes, the "largest sub-block scale on the last code" d, each times a small
//      multiplicative grid, plus the current d +- 1..2 F16 ulps (all rounded to F16);
//   3. for each candidate d (dmin fixed) every sub-block independently tries the scale codes
//      floor(a_j / d), floor + 1 and its current code, and the min codes floor(b_j / dmin),
//      floor + 1 and its current one (pairs of both); the element codes are re-assigned to the nearest code with
//      those stored values, and the pair with the lowest sub-block error wins. The sum over
//      sub-blocks is the super-block error of that candidate exactly as decoded;
//   4. the same over dmin candidates with the best d fixed (types with mins).
// A candidate replaces the current parameters only when its error is lower, so the result is
// never worse than the input.
#include "quant/kquants/search_imq.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "quant/signed_absmax.h"

namespace imq::quant {
namespace {

constexpr int kRounds = 2;  // more rounds / a wider code window: < 1% more, 2-6x slower
constexpr int kW = 1;       // scale / min codes tried: floor(r) + 1 - kW .. floor(r) + kW
constexpr float kGrid[] = {0.98f, 1.f, 1.02f};


// Error of one sub-block with stored scale A = d * sc and offset B = dmin * m, each element on
// its nearest code.
float sub_error(const float* x, const float* w, int n, float A, float B, int qmin, int qmax) {
  float err = 0;
  const float inv = A != 0 ? 1.f / A : 0.f;
  const float lo = float(qmin), hi = float(qmax);
  for (int i = 0; i < n; ++i) {
    const float l = std::clamp(float(nearest_int(std::clamp((x[i] + B) * inv, -1e6f, 1e6f))), lo, hi);
    const float e = x[i] - (A * l - B);
    err += w[i] * e * e;
  }
  return err;
}

// The codes sub_error chose.
void sub_codes(const float* x, int n, float A, float B, int qmin, int qmax, int8_t* q) {
  const float inv = A != 0 ? 1.f / A : 0.f;
  for (int i = 0; i < n; ++i)
    q[i] = int8_t(std::clamp(nearest_int(std::clamp((x[i] + B) * inv, -1e6f, 1e6f)), qmin, qmax));
}

// Distinct candidate codes: `cur` and floor(r) + 1 - kW .. floor(r) + kW, clamped to [lo, hi].
int code_candidates(float r, int cur, int lo, int hi, int out[2 * kW + 1]) {
  int n = 0;
  auto add = [&](int c) {
    c = std::clamp(c, lo, hi);
    for (int k = 0; k < n; ++k)
      if (out[k] == c) return;
    out[n++] = c;
  };
  add(cur);
  if (std::isfinite(r)) {
    const float f = std::floor(std::clamp(r, -1e6f, 1e6f));
    for (int k = 1 - kW; k <= kW; ++k) add(int(f) + k);
  }
  return n;
}

struct Fit {
  float a[16], b[16];  // continuous per-sub-block scale and offset
};

class Engine {
 public:
  Engine(const KShape& s, const float* x, const float* w) : s_(s), x_(x), w_(w) {}

  double error(const KParams& p) const {
    double err = 0;
    for (int j = 0; j < s_.n_sub; ++j) {
      const float A = p.d * float(p.sc[j]);
      const float B = s_.mmax ? p.dmin * float(p.m[j]) : 0.f;
      const float* xs = x_ + j * s_.sub;
      const float* ws = w_ + j * s_.sub;
      const int8_t* qs = p.q + j * s_.sub;
      for (int i = 0; i < s_.sub; ++i) {
        const float e = xs[i] - (A * float(qs[i]) - B);
        err += double(ws[i] * e * e);
      }
    }
    return err;
  }

  // Weighted least squares of every sub-block with the codes of p.
  Fit refit(const KParams& p) const {
    Fit f;
    for (int j = 0; j < s_.n_sub; ++j) {
      const float* xs = x_ + j * s_.sub;
      const float* ws = w_ + j * s_.sub;
      const int8_t* qs = p.q + j * s_.sub;
      double sw = 0, sq = 0, sqq = 0, sx = 0, sqx = 0;
      for (int i = 0; i < s_.sub; ++i) {
        const double wi = ws[i], qi = qs[i], xi = xs[i];
        sw += wi;
        sq += wi * qi;
        sqq += wi * qi * qi;
        sx += wi * xi;
        sqx += wi * qi * xi;
      }
      float a = p.d * float(p.sc[j]);
      float b = s_.mmax ? p.dmin * float(p.m[j]) : 0.f;
      if (s_.mmax) {
        const double det = sw * sqq - sq * sq;
        if (sw > 0 && det > 1e-9 * sw * sqq) {
          double ad = (sw * sqx - sq * sx) / det;
          double bd = (ad * sq - sx) / sw;
          if (bd < 0) {
            bd = 0;
            ad = sqx / sqq;
          }
          a = float(ad);
          b = float(bd);
        }
      } else if (sqq > 0) {
        a = float(sqx / sqq);
      }
      f.a[j] = a;
      f.b[j] = b;
    }
    return f;
  }

  // Best codes for stored d and dmin given the fit; returns the total error (float sum of the
  // sub-block errors) and fills out.
  float evaluate(float d, float dmin, const Fit& f, const KParams& cur, KParams& out) const {
    out.d = d;
    out.dmin = dmin;
    float total = 0;
    for (int j = 0; j < s_.n_sub; ++j) {
      const float* xs = x_ + j * s_.sub;
      const float* ws = w_ + j * s_.sub;
      int scs[2 * kW + 1], ms[2 * kW + 1];
      const int nsc = code_candidates(d != 0 ? f.a[j] / d : NAN, cur.sc[j], s_.smin, s_.smax, scs);
      int nm = 1;
      ms[0] = 0;
      if (s_.mmax) nm = code_candidates(dmin > 0 ? f.b[j] / dmin : NAN, cur.m[j], 0, s_.mmax, ms);
      float best = INFINITY;
      for (int a = 0; a < nsc; ++a) {
        for (int b = 0; b < nm; ++b) {
          const float A = d * float(scs[a]);
          const float B = s_.mmax ? dmin * float(ms[b]) : 0.f;
          const float e = sub_error(xs, ws, s_.sub, A, B, s_.qmin, s_.qmax);
          if (e < best) {
            best = e;
            out.sc[j] = scs[a];
            out.m[j] = ms[b];
          }
        }
      }
      sub_codes(xs, s_.sub, d * float(out.sc[j]), s_.mmax ? dmin * float(out.m[j]) : 0.f,
                s_.qmin, s_.qmax, out.q + j * s_.sub);
      total += best;
    }
    return total;
  }

  // Candidates for the super-block scale (which = 0) or min scale (which = 1).
  int candidates(int which, const KParams& p, const Fit& f, float out[32]) const {
    float bases[3];
    int nb = 0;
    const float cur = which == 0 ? p.d : p.dmin;
    bases[nb++] = cur;
    // Least squares for this scale with every other choice fixed.
    double num = 0, den = 0;
    for (int j = 0; j < s_.n_sub; ++j) {
      const float* xs = x_ + j * s_.sub;
      const float* ws = w_ + j * s_.sub;
      const int8_t* qs = p.q + j * s_.sub;
      const double sc = p.sc[j], m = s_.mmax ? p.m[j] : 0;
      for (int i = 0; i < s_.sub; ++i) {
        if (which == 0) {  // x + dmin m = d (sc q)
          const double u = sc * qs[i];
          num += ws[i] * u * (double(xs[i]) + double(p.dmin) * m);
          den += ws[i] * u * u;
        } else {           // d sc q - x = dmin m
          num += ws[i] * m * (double(p.d) * sc * qs[i] - xs[i]);
          den += ws[i] * m * m;
        }
      }
    }
    if (den > 0) bases[nb++] = float(num / den);
    // The largest sub-block value on the last code.
    const float vmax = signed_absmax(which == 0 ? f.a : f.b, s_.n_sub);
    if (vmax != 0) {
      if (which == 1) {
        bases[nb++] = vmax / float(s_.mmax);
      } else if (s_.mmax) {
        bases[nb++] = vmax / float(s_.smax);
      } else {
        bases[nb++] = vmax / float(s_.smin);  // symmetric: the extreme on the negative code
      }
    }
    int n = 0;
    auto add = [&](float v) {
      if (!std::isfinite(v) || v == 0 || n >= 32) return;
      if (which == 1 && v < 0) return;
      v = f16_round(v);
      if (!std::isfinite(v) || v == 0) return;
      for (int k = 0; k < n; ++k)
        if (out[k] == v) return;
      out[n++] = v;
    };
    for (int k = 0; k < nb; ++k)
      for (float g : kGrid) add(bases[k] * g);
    for (int k = 0; k < nb && k < 2; ++k) {
      const uint16_t h = f32_to_f16(bases[k]);
      for (int u = -1; u <= 1; ++u) {
        if (u == 0) continue;
        const int hv = int(h & 0x7fff) + u;
        if (hv <= 0 || hv >= 0x7c00) continue;
        add(f16_to_f32(uint16_t((h & 0x8000) | hv)));
      }
    }
    return n;
  }

 private:
  const KShape& s_;
  const float* x_;
  const float* w_;
};

}  // namespace

double k_block_error(const float* x, const float* y, const float* w) {
  double err = 0;
  for (int i = 0; i < kQK_K; ++i) {
    const double e = double(x[i]) - double(y[i]);
    err += double(w[i]) * e * e;
  }
  return err;
}

double k_improve(const KShape& shape, const float* x, const float* w, KParams& p) {
  const Engine eng(shape, x, w);
  double best = eng.error(p);
  KParams cand;
  for (int round = 0; round < kRounds; ++round) {
    bool improved = false;
    for (int which = 0; which < (shape.mmax ? 2 : 1); ++which) {
      const Fit fit = eng.refit(p);
      float cands[32];
      const int n = eng.candidates(which, p, fit, cands);
      KParams round_best = p;
      float round_err = INFINITY;
      for (int k = 0; k < n; ++k) {
        const float d = which == 0 ? cands[k] : p.d;
        const float dmin = which == 0 ? p.dmin : cands[k];
        const float e = eng.evaluate(d, dmin, fit, p, cand);
        if (e < round_err) {
          round_err = e;
          round_best = cand;
        }
      }
      const double e = eng.error(round_best);
      if (e < best) {
        best = e;
        p = round_best;
        improved = true;
      }
    }
    if (!improved) break;
  }
  return best;
}

namespace {

// llama.cpp's sigma^2 of a super-block for the imatrix weights: mean x^2, doubled except Q2_K.
float k_sigma2(GgmlType t, const float* x) {
  float sum_x2 = 0;
  for (int l = 0; l < kQK_K; ++l) sum_x2 += x[l] * x[l];
  return (t == GgmlType::Q2_K ? 1 : 2) * sum_x2 / float(kQK_K);
}

}  // namespace

void k_error_weights(GgmlType type, const float* x, const float* qw, float w[256]) {
  const auto t = GgmlType(type);
  if (qw) {
    if (t == GgmlType::Q6_K) {  // SYM with the raw importance
      std::memcpy(w, qw, sizeof(float) * kQK_K);
      return;
    }
    const float sigma2 = k_sigma2(t, x);
    for (int l = 0; l < kQK_K; ++l) w[l] = qw[l] * std::sqrt(sigma2 + x[l] * x[l]);
    return;
  }
  switch (t) {
    case GgmlType::Q2_K:
      for (int l = 0; l < kQK_K; ++l) w[l] = std::fabs(x[l]);
      return;
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
      for (int j = 0; j < kQK_K / 32; ++j) {
        const float* xs = x + 32 * j;
        float sum_x2 = 0;
        for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
        const float av_x = std::sqrt(sum_x2 / 32.f);
        for (int l = 0; l < 32; ++l) w[32 * j + l] = av_x + std::fabs(xs[l]);
      }
      return;
    default:  // Q3_K, Q6_K: x^2
      for (int l = 0; l < kQK_K; ++l) w[l] = x[l] * x[l];
      return;
  }
}

void k_imq_weights(GgmlType type, const float* x, const float* qw, float w[256], bool squared) {
  const auto t = GgmlType(type);
  if (!qw || t == GgmlType::Q6_K) {
    k_error_weights(type, x, qw, w);
    return;
  }
  const float sigma2 = k_sigma2(t, x);
  for (int l = 0; l < kQK_K; ++l) {
    const float m = sigma2 + x[l] * x[l];
    w[l] = squared ? qw[l] * m * m : qw[l] * m * std::sqrt(m);
  }
}

}  // namespace imq::quant
