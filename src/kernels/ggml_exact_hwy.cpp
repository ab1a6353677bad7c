// Highway versions of kernels/ggml_exact.h's inner loops. Every lane is its own chain of fused
// multiply-adds, so the lane count does not change the result; on targets with FMA (AVX2 and
// up) the result is the bits of the scalar references in ggml_exact.cpp.
#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS (HWY_AVX3_DL | HWY_SSSE3)
#endif

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/ggml_exact_hwy.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <cstdint>

#include "kernels/ggml_exact.h"

HWY_BEFORE_NAMESPACE();
namespace imq::kernels::ggml {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// At most 8 lanes: the Q8_0 product has exactly 8 accumulators; chains are per lane anyway.
using D8 = hn::CappedTag<float, 8>;

// Eight independent chains per pass (one per vector of keys or of head dimensions), so the
// fused multiply-adds pipeline instead of waiting on each other; each lane's order is unchanged.
void KeyChains(const float* q, const float* kt, int64_t hd, float* s) {
  const D8 d;
  const int64_t N = int64_t(hn::Lanes(d));
  for (int64_t j = 0; j < 64; j += 8 * N) {
    auto a0 = hn::Zero(d), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    for (int64_t k = 0; k < hd; ++k) {
      const auto qk = hn::Set(d, q[k]);
      const float* r = kt + k * 64 + j;
      a0 = hn::MulAdd(qk, hn::LoadU(d, r), a0);
      a1 = hn::MulAdd(qk, hn::LoadU(d, r + N), a1);
      a2 = hn::MulAdd(qk, hn::LoadU(d, r + 2 * N), a2);
      a3 = hn::MulAdd(qk, hn::LoadU(d, r + 3 * N), a3);
      a4 = hn::MulAdd(qk, hn::LoadU(d, r + 4 * N), a4);
      a5 = hn::MulAdd(qk, hn::LoadU(d, r + 5 * N), a5);
      a6 = hn::MulAdd(qk, hn::LoadU(d, r + 6 * N), a6);
      a7 = hn::MulAdd(qk, hn::LoadU(d, r + 7 * N), a7);
    }
    float* o = s + j;
    hn::StoreU(a0, d, o); hn::StoreU(a1, d, o + N); hn::StoreU(a2, d, o + 2 * N); hn::StoreU(a3, d, o + 3 * N);
    hn::StoreU(a4, d, o + 4 * N); hn::StoreU(a5, d, o + 5 * N); hn::StoreU(a6, d, o + 6 * N); hn::StoreU(a7, d, o + 7 * N);
  }
}

void ValueChains(const float* p, const float* v, int64_t ldv, int64_t n_keys, int64_t hd, float* acc) {
  const D8 d;
  const int64_t N = int64_t(hn::Lanes(d));
  int64_t c = 0;
  for (; c + 4 * N <= hd; c += 4 * N) {
    auto a0 = hn::LoadU(d, acc + c), a1 = hn::LoadU(d, acc + c + N), a2 = hn::LoadU(d, acc + c + 2 * N),
         a3 = hn::LoadU(d, acc + c + 3 * N);
    for (int64_t i = 0; i < n_keys; ++i) {
      const auto pi = hn::Set(d, p[i]);
      const float* r = v + i * ldv + c;
      a0 = hn::MulAdd(pi, hn::LoadU(d, r), a0);
      a1 = hn::MulAdd(pi, hn::LoadU(d, r + N), a1);
      a2 = hn::MulAdd(pi, hn::LoadU(d, r + 2 * N), a2);
      a3 = hn::MulAdd(pi, hn::LoadU(d, r + 3 * N), a3);
    }
    hn::StoreU(a0, d, acc + c); hn::StoreU(a1, d, acc + c + N);
    hn::StoreU(a2, d, acc + c + 2 * N); hn::StoreU(a3, d, acc + c + 3 * N);
  }
  for (; c + N <= hd; c += N) {
    auto a = hn::LoadU(d, acc + c);
    for (int64_t i = 0; i < n_keys; ++i) a = hn::MulAdd(hn::Set(d, p[i]), hn::LoadU(d, v + i * ldv + c), a);
    hn::StoreU(a, d, acc + c);
  }
  if (c < hd) detail::ref::value_chains(p, v + c, ldv, n_keys, hd - c, acc + c);
}

void Q8Lanes(const float* wq, const float* wd, const float* xq, const float* xd, int64_t nb, float* lanes) {
  const D8 d;
  const int64_t N = int64_t(hn::Lanes(d));
  for (int64_t t = 0; t < 8; t += N) {
    auto acc = hn::Zero(d);
    for (int64_t b = 0; b < nb; ++b) {
      const float* w = wq + b * 32 + t;
      const float* x = xq + b * 32 + t;
      auto s = hn::Mul(hn::LoadU(d, w), hn::LoadU(d, x));
      s = hn::Add(s, hn::Mul(hn::LoadU(d, w + 8), hn::LoadU(d, x + 8)));
      s = hn::Add(s, hn::Mul(hn::LoadU(d, w + 16), hn::LoadU(d, x + 16)));
      s = hn::Add(s, hn::Mul(hn::LoadU(d, w + 24), hn::LoadU(d, x + 24)));
      acc = hn::MulAdd(hn::Set(d, wd[b] * xd[b]), s, acc);
    }
    hn::StoreU(acc, d, lanes + t);
  }
}

// Q8Lanes for four activation rows at once (x + i·ldx, xd + i·ldd): each weight vector is loaded
// once for four independent chains, which hide each other's fused-step latency. Every row's
// chain is Q8Lanes's, operation for operation.
void Q8Lanes4(const float* wq, const float* wd, const float* xq, int64_t ldx, const float* xd,
              int64_t ldd, int64_t nb, float* lanes) {
  const D8 d;
  const int64_t N = int64_t(hn::Lanes(d));
  const float *x0 = xq, *x1 = xq + ldx, *x2 = xq + 2 * ldx, *x3 = xq + 3 * ldx;
  const float *d0 = xd, *d1 = xd + ldd, *d2 = xd + 2 * ldd, *d3 = xd + 3 * ldd;
  for (int64_t t = 0; t < 8; t += N) {
    auto a0 = hn::Zero(d), a1 = hn::Zero(d), a2 = hn::Zero(d), a3 = hn::Zero(d);
    for (int64_t b = 0; b < nb; ++b) {
      const int64_t o = b * 32 + t;
      const auto w0 = hn::LoadU(d, wq + o), w1 = hn::LoadU(d, wq + o + 8);
      const auto w2 = hn::LoadU(d, wq + o + 16), w3 = hn::LoadU(d, wq + o + 24);
      auto block = [&](const float* x) {
        auto s = hn::Mul(w0, hn::LoadU(d, x + o));
        s = hn::Add(s, hn::Mul(w1, hn::LoadU(d, x + o + 8)));
        s = hn::Add(s, hn::Mul(w2, hn::LoadU(d, x + o + 16)));
        return hn::Add(s, hn::Mul(w3, hn::LoadU(d, x + o + 24)));
      };
      a0 = hn::MulAdd(hn::Set(d, wd[b] * d0[b]), block(x0), a0);
      a1 = hn::MulAdd(hn::Set(d, wd[b] * d1[b]), block(x1), a1);
      a2 = hn::MulAdd(hn::Set(d, wd[b] * d2[b]), block(x2), a2);
      a3 = hn::MulAdd(hn::Set(d, wd[b] * d3[b]), block(x3), a3);
    }
    hn::StoreU(a0, d, lanes + t), hn::StoreU(a1, d, lanes + 8 + t);
    hn::StoreU(a2, d, lanes + 16 + t), hn::StoreU(a3, d, lanes + 24 + t);
  }
}

void ScaledUpdate(const float* c, const float* dw, float dt, int64_t n, float* acc) {
  const D8 d;
  const int64_t N = int64_t(hn::Lanes(d));
  const auto vdt = hn::Set(d, dt);
  int64_t r = 0;
  for (; r + N <= n; r += N)
    hn::StoreU(hn::MulAdd(hn::LoadU(d, c + r), hn::Mul(hn::LoadU(d, dw + r), vdt), hn::LoadU(d, acc + r)), d, acc + r);
  if (r < n) detail::ref::scaled_update(c + r, dw + r, dt, n - r, acc + r);
}

void PairUpdate(const float* c, const float* dw, const float* dmin, const float* m0, const float* m1, float dt,
                float b0, float b1, int64_t n, float* acc, float* accm) {
  const D8 d;
  const int64_t N = int64_t(hn::Lanes(d));
  const auto vdt = hn::Set(d, dt), vb0 = hn::Set(d, b0), vb1 = hn::Set(d, b1);
  int64_t r = 0;
  for (; r + N <= n; r += N) {
    hn::StoreU(hn::MulAdd(hn::LoadU(d, c + r), hn::Mul(hn::LoadU(d, dw + r), vdt), hn::LoadU(d, acc + r)), d, acc + r);
    const auto mins = hn::MulAdd(hn::LoadU(d, m1 + r), vb1, hn::Mul(hn::LoadU(d, m0 + r), vb0));  // exact
    hn::StoreU(hn::MulAdd(mins, hn::Mul(hn::LoadU(d, dmin + r), vdt), hn::LoadU(d, accm + r)), d, accm + r);
  }
  if (r < n) detail::ref::pair_update(c + r, dw + r, dmin + r, m0 + r, m1 + r, dt, b0, b1, n - r, acc + r, accm + r);
}

// v_expf lane by lane (the spec is ggml::v_expf).
void VExpfRow(const float* x, int64_t n, float* out) {
  const D8 d;
  const hn::RebindToSigned<D8> di;
  const int64_t N = int64_t(hn::Lanes(d));
  const auto shift = hn::Set(d, 0x1.8p23f);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const auto xv = hn::LoadU(d, x + i);
    const auto z = hn::MulAdd(xv, hn::Set(d, 0x1.715476p+0f), shift);
    const auto nv = hn::Sub(z, shift);
    const auto b = hn::NegMulAdd(nv, hn::Set(d, 0x1.7f7d1cp-20f), hn::NegMulAdd(nv, hn::Set(d, 0x1.62e4p-1f), xv));
    const auto e = hn::ShiftLeft<23>(hn::BitCast(di, z));
    const auto k = hn::BitCast(d, hn::Add(e, hn::BitCast(di, hn::Set(d, 1.0f))));
    const auto u = hn::Mul(b, b);
    const auto j = hn::MulAdd(
        hn::MulAdd(hn::MulAdd(hn::Set(d, 0x1.0e4020p-7f), b, hn::Set(d, 0x1.573e2ep-5f)), u,
                   hn::MulAdd(hn::Set(d, 0x1.555e66p-3f), b, hn::Set(d, 0x1.fffdb6p-2f))),
        u, hn::Mul(hn::Set(d, 0x1.ffffecp-1f), b));
    const auto normal = hn::MulAdd(j, k, k);
    const auto an = hn::Abs(nv);
    if (hn::AllFalse(d, hn::Gt(an, hn::Set(d, 126.0f)))) {
      hn::StoreU(normal, d, out + i);
      continue;
    }
    // 2ⁿ out of range: scale in two steps (0 or inf beyond |n| = 192), as ggml does.
    const auto g = hn::IfThenElseZero(hn::RebindMask(di, hn::Le(nv, hn::Zero(d))),
                                      hn::Set(di, int32_t(0x82000000u)));
    const auto s1 = hn::BitCast(d, hn::Add(g, hn::Set(di, 0x7f000000)));
    const auto s2 = hn::BitCast(d, hn::Sub(e, g));
    const auto big = hn::IfThenElse(hn::Gt(an, hn::Set(d, 192.0f)), hn::Mul(s1, s1),
                                    hn::Mul(hn::MulAdd(s2, j, s2), s1));
    hn::StoreU(hn::IfThenElse(hn::Gt(an, hn::Set(d, 126.0f)), big, normal), d, out + i);
  }
  for (; i < n; ++i) out[i] = v_expf(x[i]);
}

}  // namespace HWY_NAMESPACE
}  // namespace imq::kernels::ggml
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace imq::kernels::ggml {
HWY_EXPORT(KeyChains);
HWY_EXPORT(ValueChains);
HWY_EXPORT(Q8Lanes);
HWY_EXPORT(Q8Lanes4);
HWY_EXPORT(VExpfRow);
HWY_EXPORT(ScaledUpdate);
HWY_EXPORT(PairUpdate);

void v_expf_row(const float* x, int64_t n, float* out) { HWY_DYNAMIC_DISPATCH(VExpfRow)(x, n, out); }
namespace detail {
void key_chains(const float* q, const float* kt, int64_t hd, float* s) {
  HWY_DYNAMIC_DISPATCH(KeyChains)(q, kt, hd, s);
}
void value_chains(const float* p, const float* v, int64_t ldv, int64_t n_keys, int64_t hd, float* acc) {
  HWY_DYNAMIC_DISPATCH(ValueChains)(p, v, ldv, n_keys, hd, acc);
}
void q8_lanes(const float* wq, const float* wd, const float* xq, const float* xd, int64_t nb, float* lanes) {
  HWY_DYNAMIC_DISPATCH(Q8Lanes)(wq, wd, xq, xd, nb, lanes);
}
void q8_lanes4(const float* wq, const float* wd, const float* xq, int64_t ldx, const float* xd,
               int64_t ldd, int64_t nb, float* lanes) {
  HWY_DYNAMIC_DISPATCH(Q8Lanes4)(wq, wd, xq, ldx, xd, ldd, nb, lanes);
}
void scaled_update(const float* c, const float* dw, float dt, int64_t n, float* acc) {
  HWY_DYNAMIC_DISPATCH(ScaledUpdate)(c, dw, dt, n, acc);
}
void pair_update(const float* c, const float* dw, const float* dmin, const float* m0, const float* m1,
                 float dt, float b0, float b1, int64_t n, float* acc, float* accm) {
  HWY_DYNAMIC_DISPATCH(PairUpdate)(c, dw, dmin, m0, m1, dt, b0, b1, n, acc, accm);
}
}  // namespace detail
}  // namespace imq::kernels::ggml
#endif
