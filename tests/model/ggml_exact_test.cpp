// kernels/ggml_exact.h: the SIMD pieces give the bits of their scalar references, and each
// operation computes what its comment says (independent transcriptions below), close to the
// exact value.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "core/fp16.h"
#include "core/thread_pool.h"
#include "imq/ggml_types.h"
#include "imq/quant.h"
#include "kernels/ggml_exact.h"
#include "kernels/matmul.h"
#include "kernels/vec.h"
#include "synth_util.h"
#include "quant/kquants/kquants.h"

namespace imq {
namespace {

namespace gx = kernels::ggml;

using test::randn;

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Bit-exactness of the vector code needs fused multiply-add in the dispatched target.
bool cpu_has_fma() {
#if defined(__x86_64__) || defined(__i386__)
  return __builtin_cpu_supports("fma") && __builtin_cpu_supports("avx2");
#else
  return false;
#endif
}

TEST(GgmlExact, VectorPiecesGiveTheScalarReferenceBits) {
  if (!cpu_has_fma()) GTEST_SKIP() << "this CPU has no AVX2+FMA target: results differ by ulps";
  const auto q = randn(128, 1), kt = randn(128 * 64, 2);
  for (int64_t hd : {8, 64, 128}) {
    std::vector<float> s(64), s_ref(64);
    gx::detail::key_chains(q.data(), kt.data(), hd, s.data());
    gx::detail::ref::key_chains(q.data(), kt.data(), hd, s_ref.data());
    EXPECT_TRUE(same_bits(s, s_ref)) << "key chains, hd " << hd;
  }
  const auto p = randn(64, 3), v = randn(64 * 200, 4);
  for (int64_t hd : {8, 36, 64, 128}) {  // 36: vectors of 8 and a scalar tail
    for (int64_t keys : {1, 17, 64}) {
      auto acc = randn(size_t(hd), 5), acc_ref = acc;
      gx::detail::value_chains(p.data(), v.data(), 200, keys, hd, acc.data());
      gx::detail::ref::value_chains(p.data(), v.data(), 200, keys, hd, acc_ref.data());
      EXPECT_TRUE(same_bits(acc, acc_ref)) << "value chains, hd " << hd << " keys " << keys;
    }
  }
  std::vector<float> wq(256), xq(256), wd(8), xd(8);
  std::mt19937 g(6);
  for (auto& c : wq) c = float(int(g() % 255) - 127);
  for (auto& c : xq) c = float(int(g() % 255) - 127);
  for (size_t b = 0; b < 8; ++b) wd[b] = f16_to_f32(f32_to_f16(0.01f * float(b + 1))), xd[b] = f16_to_f32(f32_to_f16(0.003f * float(9 - b)));
  std::vector<float> lanes(8), lanes_ref(8);
  gx::detail::q8_lanes(wq.data(), wd.data(), xq.data(), xd.data(), 8, lanes.data());
  gx::detail::ref::q8_lanes(wq.data(), wd.data(), xq.data(), xd.data(), 8, lanes_ref.data());
  EXPECT_TRUE(same_bits(lanes, lanes_ref));
  {  // four activation rows at once: each row's lanes are q8_lanes's (rows 2 blocks apart)
    std::vector<float> lanes4(32);
    gx::detail::q8_lanes4(wq.data(), wd.data(), xq.data(), 64, xd.data(), 2, 2, lanes4.data());
    for (int64_t i = 0; i < 4; ++i) {
      gx::detail::ref::q8_lanes(wq.data(), wd.data(), xq.data() + 64 * i, xd.data() + 2 * i, 2, lanes_ref.data());
      EXPECT_TRUE(same_bits(std::vector<float>(lanes4.begin() + 8 * i, lanes4.begin() + 8 * i + 8), lanes_ref))
          << "q8_lanes4 row " << i;
    }
  }
  {  // the per-output fused steps after the integer sums (lengths with a scalar tail)
    // c, m0, m1 hold integers, as in the products (so m0·b0 + m1·b1 is exact in any order).
    auto c = randn(37, 8, 1000.0f), m0 = randn(37, 11, 30.0f), m1 = randn(37, 12, 30.0f);
    for (auto* v : {&c, &m0, &m1})
      for (auto& e : *v) e = std::nearbyint(e);
    const auto dw = randn(37, 9), dm = randn(37, 10);
    auto acc = randn(37, 13), accm = randn(37, 14), acc_ref = acc, accm_ref = accm;
    gx::detail::pair_update(c.data(), dw.data(), dm.data(), m0.data(), m1.data(), 0.37f, 3.0f, -5.0f, 37, acc.data(), accm.data());
    gx::detail::ref::pair_update(c.data(), dw.data(), dm.data(), m0.data(), m1.data(), 0.37f, 3.0f, -5.0f, 37, acc_ref.data(), accm_ref.data());
    EXPECT_TRUE(same_bits(acc, acc_ref) && same_bits(accm, accm_ref)) << "pair update";
    gx::detail::scaled_update(c.data(), dw.data(), 0.37f, 37, acc.data());
    gx::detail::ref::scaled_update(c.data(), dw.data(), 0.37f, 37, acc_ref.data());
    EXPECT_TRUE(same_bits(acc, acc_ref)) << "scaled update";
  }
  auto x = randn(1000, 7, 30.0f);
  const float inf = std::numeric_limits<float>::infinity();
  for (float special : {-inf, inf, -1000.f, -200.f, -100.f, -87.5f, 0.0f, -0.0f, 88.0f, 88.8f, 100.f}) x.push_back(special);
  std::vector<float> e(x.size()), e_ref(x.size());
  gx::v_expf_row(x.data(), int64_t(x.size()), e.data());
  gx::detail::ref::v_expf_row(x.data(), int64_t(x.size()), e_ref.data());
  EXPECT_TRUE(same_bits(e, e_ref));
  gx::v_expf_row(x.data(), int64_t(x.size()), x.data());  // in place, as the attention uses it
  EXPECT_TRUE(same_bits(x, e_ref));
}

TEST(GgmlExact, VExpfIsWithinTwoUlpOfExp) {
  for (float x = -87.0f; x < 88.5f; x += 0.0137f) {
    const double want = std::exp(double(x));
    EXPECT_NEAR(gx::v_expf(x), want, 2.5e-7 * want) << x;
  }
  EXPECT_EQ(gx::v_expf(-std::numeric_limits<float>::infinity()), 0.0f);
  EXPECT_EQ(gx::v_expf(-200.0f), 0.0f);
  EXPECT_EQ(gx::v_expf(100.0f), std::numeric_limits<float>::infinity());
  EXPECT_EQ(gx::v_expf(0.0f), 1.0f);
  // Subnormal results go through the two-step scaling: within one subnormal step (1.4e-45).
  EXPECT_NEAR(gx::v_expf(-100.0f), std::exp(-100.0), 1.5e-45);
  EXPECT_GT(gx::v_expf(-100.0f), 0.0f);
}

struct Weight {
  std::vector<uint8_t> data;
  kernels::WeightView view;
};

Weight make_weight(GgmlType type, int64_t ne0, int64_t ne1, uint32_t seed) {
  Weight w;
  const quant::Codec& codec = quant::codec(type);
  const auto wf = randn(size_t(ne0 * ne1), seed, 0.05f);
  const size_t row = quant::row_size(codec, ne0);
  w.data.resize(row * size_t(ne1));
  codec.quantize(wf.data(), w.data.data(), ne1, ne0, nullptr);
  w.view = kernels::make_weight_view("w", codec, ne0, ne1, 1, w.data.data());
  return w;
}

// The Q8_0 product written from the header's words, independently of the kernel's layout.
float q8_product_spec(const kernels::WeightView& w, int64_t r, const float* x) {
  std::vector<float> wr(static_cast<size_t>(w.ne0));
  kernels::dequantize_rows(w, r, r + 1, wr.data());
  float l[8] = {};
  for (int64_t b = 0; b < w.ne0 / 32; ++b) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
    const float dx = f16_to_f32(f32_to_f16(amax / 127.f));
    const float id = amax != 0.0f ? 127.f / amax : 0.0f;
    uint16_t h;
    std::memcpy(&h, w.row(r) + size_t(b) * (w.row_bytes / size_t(w.ne0 / 32)), 2);
    const float dw = f16_to_f32(h);
    for (int t = 0; t < 8; ++t) {
      int64_t sum = 0;
      for (int e = 4 * t; e < 4 * t + 4; ++e) {
        const auto qx = int64_t(std::nearbyint(x[b * 32 + e] * id));  // half to even
        const auto qw = int64_t(std::lround(wr[size_t(b * 32 + e)] / dw));
        sum += qx * qw;
      }
      l[t] = std::fma(dw * dx, float(sum), l[t]);
    }
  }
  return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
}

TEST(GgmlExact, Q8ProductsFollowTheirSpecAndApproximateTheProduct) {
  for (GgmlType type : {GgmlType::Q8_0, GgmlType::Q5_0}) {
    const int64_t ne0 = 96, ne1 = 37, n = 5;
    const Weight w = make_weight(type, ne0, ne1, 11);
    auto x = randn(size_t(n * ne0), 12);
    // A block whose codes hit .5 exactly: amax 127 gives id 1, so 2.5 -> 2 and -3.5 -> -4.
    x[0] = 127.0f, x[1] = 2.5f, x[2] = -3.5f;
    for (int threads : {1, 2}) {
      ThreadPool pool(threads);
      kernels::MatmulContext ctx(pool, ne0);
      std::vector<float> y(size_t(n * ne1)), ref(size_t(n * ne1));
      gx::ActCodes a8;
      gx::quantize_q8_0(x.data(), n, ne0, a8, pool);
      gx::matmul_q8_0(w.view, a8, y.data(), ctx);
      kernels::matmul_ref(w.view, x.data(), n, ref.data());
      double err = 0, norm = 0;
      for (int64_t t = 0; t < n; ++t)
        for (int64_t r = 0; r < ne1; ++r) {
          const float got = y[size_t(t * ne1 + r)];
          if (cpu_has_fma()) {
            ASSERT_EQ(got, q8_product_spec(w.view, r, x.data() + t * ne0)) << t << " " << r;
          }
          err += std::pow(got - ref[size_t(t * ne1 + r)], 2), norm += std::pow(ref[size_t(t * ne1 + r)], 2);
        }
      EXPECT_LT(std::sqrt(err / norm), 0.02) << ggml_type_display_name(type);
    }
  }
}

// Q8_K activations (quantize_row_q8_K_ref) and the K-quant products, from the header's words.
struct Q8K {
  std::vector<int> q;
  std::vector<float> d;
};
Q8K q8k(const float* x, int64_t ne0) {
  Q8K r;
  r.q.assign(size_t(ne0), 0);
  for (int64_t b = 0; b < ne0 / 256; ++b) {
    float amax = 0, max = 0;
    for (int64_t j = 0; j < 256; ++j)
      if (std::fabs(x[b * 256 + j]) > amax) amax = std::fabs(x[b * 256 + j]), max = x[b * 256 + j];
    const float iscale = -127.f / max;
    for (int64_t j = 0; j < 256; ++j) r.q[size_t(b * 256 + j)] = std::min(127, int(std::nearbyint(iscale * x[b * 256 + j])));
    r.d.push_back(1 / iscale);
  }
  return r;
}
float hsum8(const float* l) { return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7])); }

float q6_k_spec(const kernels::WeightView& w, int64_t r, const Q8K& a) {
  const auto* blocks = reinterpret_cast<const quant::BlockQ6K*>(w.row(r));
  float acc[8] = {};
  int8_t q[256];
  for (int64_t b = 0; b < w.ne0 / 256; ++b) {
    const quant::BlockQ6K& x = blocks[b];
    quant::q6_k_codes(x, q);
    const float d = a.d[size_t(b)] * f16_to_f32(x.d);
    for (int L = 0; L < 8; ++L) {
      int64_t T = 0;
      for (int run = 0; run < 8; ++run) {
        int64_t s4 = 0;
        for (int e = 32 * run + 4 * L; e < 32 * run + 4 * L + 4; ++e) s4 += q[e] * a.q[size_t(b * 256 + e)];
        T += x.scales[2 * run + (L >= 4)] * s4;
      }
      acc[L] = std::fma(d, float(T), acc[L]);
    }
  }
  return hsum8(acc);
}

// ggml_vec_dot_q4_K_q8_K: lane L sums Σ_j scale_j · (elements 32j+4L..+3); mins in four lanes
// k from sub-blocks 2k and 2k+1, d_min negated.
float q4_k_vec_dot_spec(const kernels::WeightView& w, int64_t r, const Q8K& a) {
  const auto* blocks = reinterpret_cast<const quant::BlockQ4K*>(w.row(r));
  float acc[8] = {}, am[4] = {};
  uint8_t q[256];
  for (int64_t b = 0; b < w.ne0 / 256; ++b) {
    const quant::BlockQ4K& x = blocks[b];
    quant::q4_k_codes(x, q);
    int sc[8], m[8], B[8] = {};
    for (int j = 0; j < 8; ++j) {
      uint8_t s6, m6;
      quant::k4_scale_min(x.scales, j, &s6, &m6);
      sc[j] = s6, m[j] = m6;
      for (int e = 32 * j; e < 32 * j + 32; ++e) B[j] += a.q[size_t(b * 256 + e)];
    }
    const float d = a.d[size_t(b)] * f16_to_f32(x.d), dmin = -a.d[size_t(b)] * f16_to_f32(x.dmin);
    for (int L = 0; L < 8; ++L) {
      int64_t T = 0;
      for (int j = 0; j < 8; ++j)
        for (int e = 32 * j + 4 * L; e < 32 * j + 4 * L + 4; ++e) T += sc[j] * q[e] * a.q[size_t(b * 256 + e)];
      acc[L] = std::fma(d, float(T), acc[L]);
    }
    for (int k = 0; k < 4; ++k) am[k] = std::fma(dmin, float(m[2 * k] * B[2 * k] + m[2 * k + 1] * B[2 * k + 1]), am[k]);
  }
  return hsum8(acc) + ((am[0] + am[2]) + (am[1] + am[3]));
}

float q4_k_spec(const kernels::WeightView& w, int64_t r, const Q8K& a, bool gemm) {
  const auto* blocks = reinterpret_cast<const quant::BlockQ4K*>(w.row(r));
  float acc = 0, accm = 0;
  for (int64_t b = 0; b < w.ne0 / 256; ++b) {
    const quant::BlockQ4K& x = blocks[b];
    int64_t dot[8], B[8], sc[8], m[8];
    for (int j = 0; j < 8; ++j) {
      uint8_t s6, m6;
      quant::k4_scale_min(x.scales, j, &s6, &m6);
      sc[j] = s6, m[j] = m6, dot[j] = 0, B[j] = 0;
      for (int e = 0; e < 32; ++e) {
        const int el = 32 * j + e;  // byte 32c+l: low nibble element 64c+l, high 64c+32+l
        const uint8_t byte = x.qs[32 * (el / 64) + el % 32];
        const int q = (el % 64) < 32 ? byte & 15 : byte >> 4;
        dot[j] += q * a.q[size_t(b * 256 + el)];
        B[j] += a.q[size_t(b * 256 + el)];
      }
    }
    const float D = f16_to_f32(x.d) * a.d[size_t(b)], Dm = f16_to_f32(x.dmin) * a.d[size_t(b)];
    if (gemm) {
      for (int p = 0; p < 8; p += 2) {
        acc = std::fma(float(sc[p] * dot[p] + sc[p + 1] * dot[p + 1]), D, acc);
        accm = std::fma(float(m[p] * B[p] + m[p + 1] * B[p + 1]), Dm, accm);
      }
    } else {
      int64_t S = 0, M = 0;
      for (int j = 0; j < 8; ++j) S += sc[j] * dot[j], M += m[j] * B[j];
      acc = std::fma(float(S), D, acc);
      accm = std::fma(float(M), Dm, accm);
    }
  }
  return acc - accm;
}

TEST(GgmlExact, KQuantProductsFollowTheirSpecAndApproximateTheProduct) {
  const int64_t ne0 = 512, n = 7;  // 7 rows: 4 through gemm, 3 through gemv
  const auto x = randn(size_t(n * ne0), 51);
  for (GgmlType type : {GgmlType::Q4_K, GgmlType::Q6_K}) {
    for (int64_t ne1 : {136, 12}) {  // Q4_K: 136 rows repacked, 12 not (vec_dot)
      const Weight w = make_weight(type, ne0, ne1, 52);
      ThreadPool pool(2);
      kernels::MatmulContext ctx(pool, ne0);
      for (bool experts : {false, true}) {
        std::vector<float> y(size_t(n * ne1)), ref(size_t(n * ne1));
        gx::ActCodes a8;
        gx::quantize_q8_k(x.data(), n, ne0, a8, pool);
        gx::matmul_q8_k(w.view, a8, y.data(), ctx, experts);
        kernels::matmul_ref(w.view, x.data(), n, ref.data());
        double err = 0, norm = 0;
        for (int64_t t = 0; t < n; ++t) {
          const Q8K a = q8k(x.data() + t * ne0, ne0);
          for (int64_t r = 0; r < ne1; ++r) {
            const float got = y[size_t(t * ne1 + r)];
            if (cpu_has_fma()) {
              const float want = type == GgmlType::Q6_K ? q6_k_spec(w.view, r, a)
                                 : ne1 % 8 == 0       ? q4_k_spec(w.view, r, a, !experts && t < 4)
                                                      : q4_k_vec_dot_spec(w.view, r, a);
              ASSERT_EQ(got, want) << ggml_type_display_name(type) << " t " << t << " r " << r;
            }
            err += std::pow(got - ref[size_t(t * ne1 + r)], 2), norm += std::pow(ref[size_t(t * ne1 + r)], 2);
          }
        }
        EXPECT_LT(std::sqrt(err / norm), 0.02) << ggml_type_display_name(type) << " " << ne1;
      }
    }
  }
}

TEST(GgmlExact, OddF16RowsFollowVecDotF16) {
  const int64_t ne0 = 172, ne1 = 9, n = 3;
  const Weight w = make_weight(GgmlType::F16, ne0, ne1, 21);
  const auto x = randn(size_t(n * ne0), 22);
  ThreadPool pool(2);
  kernels::MatmulContext ctx(pool, ne0);
  std::vector<float> x16(x.size()), y(size_t(n * ne1));
  kernels::round_f16(x.data(), int64_t(x.size()), x16.data());
  gx::matmul_f16(w.view, x16.data(), n, y.data(), ctx);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t r = 0; r < ne1; ++r) {
      const auto* wr = reinterpret_cast<const uint16_t*>(w.view.row(r));
      // 160 values in four 8-lane FMA accumulators, the last 12 in double.
      float acc[4][8] = {};
      for (int64_t i = 0; i < 160; ++i)
        acc[(i % 32) / 8][i % 8] = std::fma(f16_to_f32(wr[i]), f16_to_f32(f32_to_f16(x[size_t(t * ne0 + i)])),
                                            acc[(i % 32) / 8][i % 8]);
      float a[8];
      for (int l = 0; l < 8; ++l) a[l] = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]);
      double want = double(((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7])));
      double exact = 0;
      for (int64_t i = 0; i < ne0; ++i) {
        const float xi = f16_to_f32(f32_to_f16(x[size_t(t * ne0 + i)]));
        if (i >= 160) want += double(f16_to_f32(wr[i]) * xi);
        exact += double(f16_to_f32(wr[i])) * double(xi);
      }
      EXPECT_EQ(y[size_t(t * ne1 + r)], float(want));
      EXPECT_NEAR(y[size_t(t * ne1 + r)], exact, 1e-5);
    }
}

// Causal attention in double, the value both paths approximate (window > 0: each query sees
// only its last `window` keys).
std::vector<float> attention_double(const gx::AttentionShape& s, const std::vector<float>& q,
                                    const std::vector<float>& k, const std::vector<float>& v, int64_t n,
                                    int64_t window = 0) {
  std::vector<float> out(size_t(n * s.ldq));
  const double scale = s.scale;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t h = 0; h < s.n_head; ++h) {
      const int64_t g = h / s.group;
      const int64_t first = window > 0 ? std::max<int64_t>(0, i - window + 1) : 0;
      std::vector<double> w(size_t(i + 1), 0.0);
      double mx = -1e300, sum = 0;
      for (int64_t j = first; j <= i; ++j) {
        double d = 0;
        for (int64_t c = 0; c < s.hd; ++c) d += double(q[size_t(i * s.ldq + h * s.hd + c)]) * k[size_t(j * s.ldkv + g * s.hd + c)];
        w[size_t(j)] = d * scale, mx = std::max(mx, w[size_t(j)]);
      }
      for (int64_t j = first; j <= i; ++j) sum += (w[size_t(j)] = std::exp(w[size_t(j)] - mx));
      for (int64_t c = 0; c < s.hd; ++c) {
        double acc = 0;
        for (int64_t j = first; j <= i; ++j) acc += w[size_t(j)] * v[size_t(j * s.ldkv + g * s.hd + c)];
        out[size_t(i * s.ldq + h * s.hd + c)] = float(acc / sum);
      }
    }
  return out;
}

TEST(GgmlExact, AttentionPathsApproximateAttentionAndTiledRowsIgnoreTheSplit) {
  gx::AttentionShape s;
  s.n_head = 4, s.group = 2, s.hd = 16, s.ldq = 64, s.ldkv = 32, s.scale = 0.25f;
  const int64_t n = 160;
  const auto q = randn(size_t(n * s.ldq), 31, 2.0f);
  auto k = randn(size_t(n * s.ldkv), 32, 2.0f), v = randn(size_t(n * s.ldkv), 33);
  for (auto& e : k) e = f16_to_f32(f32_to_f16(e));  // the cache holds half-rounded values
  for (auto& e : v) e = f16_to_f32(f32_to_f16(e));
  const auto want = attention_double(s, q, k, v, n);
  EXPECT_TRUE(gx::attention_tiled_path(64, 16));
  EXPECT_FALSE(gx::attention_tiled_path(63, 16));
  EXPECT_FALSE(gx::attention_tiled_path(512, 12));
  ThreadPool one(1), three(3);
  std::vector<float> tiled(want.size()), tiled3(want.size()), split(want.size()), rows(want.size());
  gx::attention(s, q.data(), k.data(), v.data(), 0, n, 0, tiled.data(), one);
  gx::attention(s, q.data(), k.data(), v.data(), 0, n, 0, tiled3.data(), three);
  EXPECT_TRUE(same_bits(tiled, tiled3)) << "thread count";
  // 96 + 64 rows: both tiled, every row the same bits as in one micro-batch.
  gx::attention(s, q.data(), k.data(), v.data(), 0, 96, 0, split.data(), three);
  gx::attention(s, q.data() + 96 * s.ldq, k.data(), v.data(), 96, 64, 0, split.data() + 96 * s.ldq, three);
  EXPECT_TRUE(same_bits(tiled, split)) << "micro-batch split";
  // Micro-batches of 32 rows take the per-row path (half-precision value accumulators).
  for (int64_t b = 0; b < n; b += 32)
    gx::attention(s, q.data() + b * s.ldq, k.data(), v.data(), b, 32, 0, rows.data() + b * s.ldq, three);
  double e_tiled = 0, e_rows = 0, norm = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    e_tiled = std::max(e_tiled, double(std::fabs(tiled[i] - want[i])));
    e_rows = std::max(e_rows, double(std::fabs(rows[i] - want[i])));
    norm = std::max(norm, double(std::fabs(want[i])));
  }
  EXPECT_LT(e_tiled, 1e-5 * norm);
  EXPECT_LT(e_rows, 4e-3 * norm);   // half precision accumulators
  EXPECT_GT(e_rows, 10 * e_tiled);  // ... which the per-row path does use
}

TEST(GgmlExact, SlidingWindowAttentionSeesOnlyTheLastKeysOnBothPaths) {
  gx::AttentionShape s;
  s.n_head = 2, s.group = 2, s.hd = 16, s.ldq = 32, s.ldkv = 16, s.scale = 0.25f;
  const int64_t n = 192, window = 40;  // windows that start inside, and before, a 64-key tile
  const auto q = randn(size_t(n * s.ldq), 51, 2.0f);
  auto k = randn(size_t(n * s.ldkv), 52, 2.0f), v = randn(size_t(n * s.ldkv), 53);
  for (auto& e : k) e = f16_to_f32(f32_to_f16(e));
  for (auto& e : v) e = f16_to_f32(f32_to_f16(e));
  const auto want = attention_double(s, q, k, v, n, window);
  const auto full = attention_double(s, q, k, v, n);
  ThreadPool two(2);
  std::vector<float> tiled(want.size()), rows(want.size());
  gx::attention(s, q.data(), k.data(), v.data(), 0, n, window, tiled.data(), two);
  for (int64_t b = 0; b < n; b += 16)
    gx::attention(s, q.data() + b * s.ldq, k.data(), v.data(), b, 16, window, rows.data() + b * s.ldq, two);
  double e_tiled = 0, e_rows = 0, norm = 0, moved = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    e_tiled = std::max(e_tiled, double(std::fabs(tiled[i] - want[i])));
    e_rows = std::max(e_rows, double(std::fabs(rows[i] - want[i])));
    norm = std::max(norm, double(std::fabs(want[i])));
    moved = std::max(moved, double(std::fabs(full[i] - want[i])));
  }
  EXPECT_LT(e_tiled, 1e-5 * norm);
  EXPECT_LT(e_rows, 4e-3 * norm);
  EXPECT_GT(moved, 0.1 * norm) << "the window must change the result";
  // The first `window` queries see every key: identical to the causal attention's rows.
  std::vector<float> causal(want.size());
  gx::attention(s, q.data(), k.data(), v.data(), 0, n, 0, causal.data(), two);
  for (int64_t i = 0; i < window * s.ldq; ++i) EXPECT_EQ(tiled[size_t(i)], causal[size_t(i)]) << i;
}

// The AVX512 ggml_v_expf: within ggml's stated error of exp, 0 and inf beyond its range, and
// not the AVX2 function's bits everywhere (the constant term is added at another step).
TEST(GgmlExact, Avx512VExpfIsItsOwnApproximation) {
  std::mt19937 g(3);
  std::uniform_real_distribution<float> u(-87.0f, 88.0f);
  int differ = 0;
  for (int i = 0; i < 20000; ++i) {
    const float x = u(g);
    const float a = gx::v_expf_avx512(x);
    EXPECT_NEAR(a, std::exp(double(x)), 4e-7 * std::exp(double(x))) << x;
    differ += a != gx::v_expf(x);
  }
  EXPECT_GT(differ, 0);
  EXPECT_EQ(gx::v_expf_avx512(-std::numeric_limits<float>::infinity()), 0.0f);
  EXPECT_EQ(gx::v_expf_avx512(-200.0f), 0.0f);
  EXPECT_EQ(gx::v_expf_avx512(200.0f), std::numeric_limits<float>::infinity());
  EXPECT_EQ(gx::v_expf_avx512(0.0f), 1.0f);
  // The softmax sums of both builds: the same values added in another order.
  std::vector<float> v(64);
  for (auto& e : v) e = std::fabs(u(g)) / 88.0f;
  double ref = 0;
  for (float e : v) ref += e;
  EXPECT_NEAR(gx::softmax_sum(v.data(), 64, gx::Cpu::Avx2), ref, 1e-5);
  EXPECT_NEAR(gx::softmax_sum(v.data(), 64, gx::Cpu::Avx512Bf16), ref, 1e-5);
}

TEST(GgmlExact, GegluLooksGeluUpInAHalfPrecisionTable) {
  const std::vector<float> gate = {-12.0f, -10.0f, -9.99f, -1.3f, -0.001f, 0.0f, 0.4f, 1.0f,
                                   2.5f, 9.99f, 10.0f, 31.0f};
  std::vector<float> up(gate.size(), 1.5f), out(gate.size());
  gx::geglu(gate.data(), up.data(), int64_t(gate.size()), out.data());
  for (size_t i = 0; i < gate.size(); ++i) {
    const float x = gate[i];
    float want;
    if (x <= -10.0f) want = 0.0f;
    else if (x >= 10.0f) want = x * 1.5f;
    else want = f16_to_f32(f32_to_f16(gx::gelu_tanh(f16_to_f32(f32_to_f16(x))))) * 1.5f;
    EXPECT_EQ(out[i], want) << x;
    // The tanh approximation of x·Φ(x), within half precision of the exact GELU.
    const double exact = 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
    if (std::fabs(x) < 10) {
      EXPECT_NEAR(out[i] / 1.5, exact, 2e-3 * std::max(1.0, std::fabs(exact))) << x;
    }
  }
}

TEST(GgmlExact, SwigluUsesVExpfForWholeGroupsOfEight) {
  const int64_t rows = 2, n_ff = 21;  // 16 through v_expf, 5 through expf per row
  const auto gate = randn(size_t(rows * n_ff), 41, 3.0f), up = randn(size_t(rows * n_ff), 42);
  std::vector<float> out(gate.size());
  gx::swiglu(gate.data(), up.data(), rows, n_ff, out.data());
  for (int64_t t = 0; t < rows; ++t)
    for (int64_t i = 0; i < n_ff; ++i) {
      const float x = gate[size_t(t * n_ff + i)], g = up[size_t(t * n_ff + i)];
      const float e = i < 16 ? gx::v_expf(-x) : std::exp(-x);
      EXPECT_EQ(out[size_t(t * n_ff + i)], x / (1.0f + e) * g) << t << " " << i;
    }
}

}  // namespace
}  // namespace imq
