// Highway implementations of kernels/vec.h, compiled once per SIMD target and chosen at
// run time (HWY_DYNAMIC_DISPATCH). Targets are limited to AVX3, AVX2, SSE4 and the emulated
// 128-bit fallback to keep compile time low; the release machine is AVX2.
#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS (HWY_AVX3_DL | HWY_SSSE3)
#endif

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/vec_hwy.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>
#include <hwy/contrib/math/math-inl.h>

#include <cstdint>
#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "kernels/vec.h"

HWY_BEFORE_NAMESPACE();
namespace imq::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;

// Loads N floats converted from a half-precision row.
template <class D>
HWY_INLINE hn::Vec<D> LoadF16(D d, const uint16_t* p) {
  const hn::Rebind<hwy::float16_t, D> dh;
  return hn::PromoteTo(d, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p)));
}

// bfloat16 -> float is a 16-bit left shift of the bits.
template <class D>
HWY_INLINE hn::Vec<D> LoadBF16(D d, const uint16_t* p) {
  const hn::RebindToUnsigned<D> du32;
  const hn::Rebind<uint16_t, D> du16;
  return hn::BitCast(d, hn::ShiftLeft<16>(hn::PromoteTo(du32, hn::LoadU(du16, p))));
}

struct LoadF32 {
  template <class D>
  HWY_INLINE hn::Vec<D> operator()(D d, const float* p) const { return hn::LoadU(d, p); }
  static float one(const float* p) { return *p; }
};
struct LoadHalf {
  template <class D>
  HWY_INLINE hn::Vec<D> operator()(D d, const uint16_t* p) const { return LoadF16(d, p); }
  static float one(const uint16_t* p) { return f16_to_f32(*p); }
};
struct LoadBHalf {
  template <class D>
  HWY_INLINE hn::Vec<D> operator()(D d, const uint16_t* p) const { return LoadBF16(d, p); }
  static float one(const uint16_t* p) { return bf16_to_f32(*p); }
};

// Σ a[i]*b[i] with four independent accumulators (hides FMA latency).
template <class T, class Load>
HWY_INLINE float DotImpl(const T* a, const float* b, int64_t n, Load load) {
  const DF d;
  const int64_t N = int64_t(hn::Lanes(d));
  auto s0 = hn::Zero(d), s1 = hn::Zero(d), s2 = hn::Zero(d), s3 = hn::Zero(d);
  int64_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    s0 = hn::MulAdd(load(d, a + i), hn::LoadU(d, b + i), s0);
    s1 = hn::MulAdd(load(d, a + i + N), hn::LoadU(d, b + i + N), s1);
    s2 = hn::MulAdd(load(d, a + i + 2 * N), hn::LoadU(d, b + i + 2 * N), s2);
    s3 = hn::MulAdd(load(d, a + i + 3 * N), hn::LoadU(d, b + i + 3 * N), s3);
  }
  for (; i + N <= n; i += N) s0 = hn::MulAdd(load(d, a + i), hn::LoadU(d, b + i), s0);
  s0 = hn::Add(hn::Add(s0, s1), hn::Add(s2, s3));
  float sum = hn::GetLane(hn::SumOfLanes(d, s0));
  for (; i < n; ++i) sum += Load::one(a + i) * b[i];
  return sum;
}

float DotF32(const float* a, const float* b, int64_t n) { return DotImpl(a, b, n, LoadF32()); }
float DotF16(const uint16_t* a, const float* b, int64_t n) { return DotImpl(a, b, n, LoadHalf()); }
float DotBF16(const uint16_t* a, const float* b, int64_t n) { return DotImpl(a, b, n, LoadBHalf()); }

float MaxF32(const float* x, int64_t n) {
  const DF d;
  const int64_t N = int64_t(hn::Lanes(d));
  int64_t i = 0;
  float m = x[0];
  if (n >= N) {
    auto v = hn::LoadU(d, x);
    for (i = N; i + N <= n; i += N) v = hn::Max(v, hn::LoadU(d, x + i));
    m = hn::GetLane(hn::MaxOfLanes(d, v));
  }
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

double ExpSubSum(float* x, int64_t n, float m) {
  const DF d;
  const int64_t N = int64_t(hn::Lanes(d));
  const auto vm = hn::Set(d, m);
  auto acc = hn::Zero(d);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const auto e = hn::Exp(d, hn::Sub(hn::LoadU(d, x + i), vm));
    hn::StoreU(e, d, x + i);
    acc = hn::Add(acc, e);
  }
  double s = double(hn::GetLane(hn::SumOfLanes(d, acc)));
  for (; i < n; ++i) s += (x[i] = std::exp(x[i] - m));
  return s;
}

void ScaleF32(float* x, int64_t n, float s) {
  const DF d;
  const int64_t N = int64_t(hn::Lanes(d));
  const auto vs = hn::Set(d, s);
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::Mul(hn::LoadU(d, x + i), vs), d, x + i);
  for (; i < n; ++i) x[i] *= s;
}

void AddSquares(const float* x, int64_t n_rows, int64_t ne0, double* s) {
  const hn::ScalableTag<double> dd;
  const hn::Rebind<float, decltype(dd)> df;  // half as many floats as a full float vector
  const int64_t N = int64_t(hn::Lanes(dd));
  for (int64_t r = 0; r < n_rows; ++r) {
    const float* xr = x + r * ne0;
    int64_t j = 0;
    for (; j + N <= ne0; j += N) {
      const auto v = hn::PromoteTo(dd, hn::LoadU(df, xr + j));
      hn::StoreU(hn::MulAdd(v, v, hn::LoadU(dd, s + j)), dd, s + j);
    }
    for (; j < ne0; ++j) s[j] += double(xr[j]) * double(xr[j]);
  }
}

// Largest |x[i]| of n values (n a multiple of the lane count).
HWY_INLINE float MaxAbs(const float* x, int64_t n) {
  const DF d;
  const int64_t N = int64_t(hn::Lanes(d));
  auto m = hn::Zero(d);
  for (int64_t i = 0; i < n; i += N) m = hn::Max(m, hn::Abs(hn::LoadU(d, x + i)));
  return hn::GetLane(hn::MaxOfLanes(d, m));
}

// out[i] = scale * min(cap, round_half_even(x[i] * mul)) for n values (a multiple of lanes).
HWY_INLINE void ScaleRound(const float* x, int64_t n, float mul, float scale, float cap, float* out) {
  const DF d;
  const int64_t N = int64_t(hn::Lanes(d));
  const auto vm = hn::Set(d, mul), vs = hn::Set(d, scale), vc = hn::Set(d, cap);
  for (int64_t i = 0; i < n; i += N)
    hn::StoreU(hn::Mul(vs, hn::Min(vc, hn::Round(hn::Mul(hn::LoadU(d, x + i), vm)))), d, out + i);
}

// Lane counts of the compiled targets (4, 8, 16) divide the block sizes 32 and 256.
void RoundQ8_0(const float* x, int64_t n, float* out) {
  for (int64_t b = 0; b < n; b += 32) {
    const float amax = MaxAbs(x + b, 32);
    const float d = f16_to_f32(f32_to_f16(amax / 127.f));
    // |x * id| <= 127 (rounded), so the cap of 127 changes nothing, as in the reference.
    ScaleRound(x + b, 32, amax != 0.0f ? 127.f / amax : 0.0f, d, 127.0f, out + b);
  }
}

void RoundQ8K(const float* x, int64_t n, float* out) {
  for (int64_t b = 0; b < n; b += 256) {
    const float amax = MaxAbs(x + b, 256);
    if (!(amax > 0.0f)) {
      std::memset(out + b, 0, 256 * sizeof(float));
      continue;
    }
    int64_t j = 0;
    while (j < 255 && std::fabs(x[b + j]) != amax) ++j;  // the first value of largest magnitude
    const float iscale = -127.f / x[b + j];
    ScaleRound(x + b, 256, iscale, 1.0f / iscale, 127.0f, out + b);
  }
}

// Only x86 targets with F16C (AVX2 and up) narrow to half rounding to nearest even in
// hardware; Highway's software narrowing on older targets truncates, so they take the scalar
// loop (measured by the test that compares every target with the reference).
void RoundF16(const float* x, int64_t n, float* out) {
  int64_t i = 0;
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  const DF d;
  const hn::Rebind<hwy::float16_t, DF> dh;
  const int64_t N = int64_t(hn::Lanes(d));
  for (; i + N <= n; i += N) hn::StoreU(hn::PromoteTo(d, hn::DemoteTo(dh, hn::LoadU(d, x + i))), d, out + i);
#endif
  for (; i < n; ++i) out[i] = f16_to_f32(f32_to_f16(x[i]));
}

void F16ToF32(const uint16_t* src, float* dst, int64_t n) {
  const DF d;
  const int64_t N = int64_t(hn::Lanes(d));
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(LoadF16(d, src + i), d, dst + i);
  for (; i < n; ++i) dst[i] = f16_to_f32(src[i]);
}

void BF16ToF32(const uint16_t* src, float* dst, int64_t n) {
  const DF d;
  const int64_t N = int64_t(hn::Lanes(d));
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(LoadBF16(d, src + i), d, dst + i);
  for (; i < n; ++i) dst[i] = bf16_to_f32(src[i]);
}

const char* TargetName() { return hwy::TargetName(HWY_TARGET); }

}  // namespace HWY_NAMESPACE
}  // namespace imq::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace imq::kernels {

HWY_EXPORT(DotF32);
HWY_EXPORT(DotF16);
HWY_EXPORT(DotBF16);
HWY_EXPORT(MaxF32);
HWY_EXPORT(ExpSubSum);
HWY_EXPORT(ScaleF32);
HWY_EXPORT(F16ToF32);
HWY_EXPORT(BF16ToF32);
HWY_EXPORT(TargetName);
HWY_EXPORT(AddSquares);
HWY_EXPORT(RoundQ8_0);
HWY_EXPORT(RoundQ8K);
HWY_EXPORT(RoundF16);

float dot_f32(const float* a, const float* b, int64_t n) { return HWY_DYNAMIC_DISPATCH(DotF32)(a, b, n); }
float dot_f16(const uint16_t* a, const float* b, int64_t n) { return HWY_DYNAMIC_DISPATCH(DotF16)(a, b, n); }
float dot_bf16(const uint16_t* a, const float* b, int64_t n) { return HWY_DYNAMIC_DISPATCH(DotBF16)(a, b, n); }
float max_f32(const float* x, int64_t n) { return HWY_DYNAMIC_DISPATCH(MaxF32)(x, n); }
double exp_sub_sum(float* x, int64_t n, float m) { return HWY_DYNAMIC_DISPATCH(ExpSubSum)(x, n, m); }
void scale_f32(float* x, int64_t n, float s) { HWY_DYNAMIC_DISPATCH(ScaleF32)(x, n, s); }
void f16_to_f32_row(const uint16_t* src, float* dst, int64_t n) { HWY_DYNAMIC_DISPATCH(F16ToF32)(src, dst, n); }
void bf16_to_f32_row(const uint16_t* src, float* dst, int64_t n) { HWY_DYNAMIC_DISPATCH(BF16ToF32)(src, dst, n); }
void add_squares(const float* x, int64_t n_rows, int64_t ne0, double* s) {
  HWY_DYNAMIC_DISPATCH(AddSquares)(x, n_rows, ne0, s);
}
void round_q8_0(const float* x, int64_t n, float* out) { HWY_DYNAMIC_DISPATCH(RoundQ8_0)(x, n, out); }
void round_q8_k(const float* x, int64_t n, float* out) { HWY_DYNAMIC_DISPATCH(RoundQ8K)(x, n, out); }
void round_f16(const float* x, int64_t n, float* out) { HWY_DYNAMIC_DISPATCH(RoundF16)(x, n, out); }
const char* simd_target_name() { return HWY_DYNAMIC_DISPATCH(TargetName)(); }
std::vector<int64_t> simd_targets() { return hwy::SupportedAndGeneratedTargets(); }
void use_simd_target(int64_t target) { hwy::SetSupportedTargetsForTest(target); }

}  // namespace imq::kernels
#endif  // HWY_ONCE
