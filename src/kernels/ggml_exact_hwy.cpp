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

void KeyChains(const float* q, const float* kt, int64_t hd, float* s) {
  const D8 d;
  const int64_t N = int64_t(hn::Lanes(d));
  for (int64_t j = 0; j < 64; j += N) {
    auto acc = hn::Zero(d);
    for (int64_t k = 0; k < hd; ++k) acc = hn::MulAdd(hn::Set(d, q[k]), hn::LoadU(d, kt + k * 64 + j), acc);
    hn::StoreU(acc, d, s + j);
  }
}

void ValueChains(const float* p, const float* v, int64_t ldv, int64_t n_keys, int64_t hd, float* acc) {
  const D8 d;
  const int64_t N = int64_t(hn::Lanes(d));
  int64_t c = 0;
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

// v_expf lane by lane (the spec is ggml::v_expf); lanes with |n| > 126 take the scalar code.
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
    if (hn::AllFalse(d, hn::Gt(hn::Abs(nv), hn::Set(d, 126.0f)))) {
      hn::StoreU(hn::MulAdd(j, k, k), d, out + i);
    } else {  // out may alias x: keep the inputs
      float in[8];
      hn::StoreU(xv, d, in);
      for (int64_t l = 0; l < N; ++l) out[i + l] = v_expf(in[l]);
    }
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
HWY_EXPORT(VExpfRow);

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
}  // namespace detail
}  // namespace imq::kernels::ggml
#endif
