// ggml's CPU arithmetic (kernels/ggml_exact.h): v_expf and silu, the Q8_0, F32 and F16 products,
// and the scalar references of the SIMD pieces (ggml_exact_hwy.cpp). The K-quant products are in
// ggml_kquants.cpp, flash attention in ggml_attention.cpp.
#include "kernels/ggml_exact.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/fp16.h"
#include "imq/error.h"
#include "imq/ggml_types.h"
#include "kernels/act_codes.h"
#include "kernels/activations.h"
#include "kernels/vec.h"

namespace imq::kernels::ggml {

namespace {
// The part both of ggml's vectorised exps share: x = n·ln2 + b with n = round(x·log2 e) (by the
// 1.5·2²³ shift, z keeps n in its low bits), and the inner polynomial p of b, u = b².
struct ExpSteps {
  float z, n, b, u, p;
};
ExpSteps exp_steps(float x) {
  constexpr float kShift = 0x1.8p23f;
  ExpSteps s;
  s.z = std::fma(x, 0x1.715476p+0f, kShift);
  s.n = s.z - kShift;
  s.b = std::fma(-s.n, 0x1.7f7d1cp-20f, std::fma(-s.n, 0x1.62e4p-1f, x));
  s.u = s.b * s.b;
  s.p = std::fma(std::fma(0x1.0e4020p-7f, s.b, 0x1.573e2ep-5f), s.u, std::fma(0x1.555e66p-3f, s.b, 0x1.fffdb6p-2f));
  return s;
}
constexpr float kExpC1 = 0x1.ffffecp-1f;
}  // namespace

float v_expf(float x) {
  const ExpSteps s = exp_steps(x);
  const uint32_t e = std::bit_cast<uint32_t>(s.z) << 23;
  const float k = std::bit_cast<float>(e + std::bit_cast<uint32_t>(1.0f));
  const float j = std::fma(s.p, s.u, kExpC1 * s.b);
  if (!(std::fabs(s.n) > 126.0f)) return std::fma(j, k, k);
  const uint32_t g = s.n <= 0.0f ? 0x82000000u : 0u;
  const float s1 = std::bit_cast<float>(g + 0x7f000000u);
  if (std::fabs(s.n) > 192.0f) return s1 * s1;
  const float s2 = std::bit_cast<float>(e - g);
  return std::fma(s2, j, s2) * s1;
}

// The AVX-512 build: the 1 folded into the polynomial, then scalef (j·2ⁿ rounded once).
float v_expf_avx512(float x) {
  const ExpSteps s = exp_steps(x);
  const float j = std::fma(s.p, s.u, std::fma(kExpC1, s.b, 1.0f));
  if (std::fabs(s.n) > 192.0f) return s.n <= 0.0f ? 0.0f : std::numeric_limits<float>::infinity();
  return std::ldexp(j, int(s.n));
}

void v_expf_row(const float* x, int64_t n, float* out, Cpu cpu) {
  if (cpu == Cpu::Avx2) return v_expf_row(x, n, out);
  for (int64_t i = 0; i < n; ++i) out[i] = v_expf_avx512(x[i]);
}

namespace {
// _mm512_reduce_add_ps as GCC expands it: halves, quarters, then pairs.
float reduce16(const float* l) {
  float h[8], q[4];
  for (int i = 0; i < 8; ++i) h[i] = l[i + 8] + l[i];
  for (int i = 0; i < 4; ++i) q[i] = h[i + 4] + h[i];
  const float a = q[0] + q[2], b = q[1] + q[3];
  return a + b;
}
}  // namespace

double softmax_sum(const float* x, int64_t n, Cpu cpu) {
  double sum = 0;
  if (cpu == Cpu::Avx2)
    for (int64_t i = 0; i < n; i += 8) sum += double(detail::lanes_sum(x + i));
  else
    for (int64_t i = 0; i < n; i += 16) sum += double(reduce16(x + i));
  return sum;
}

void swiglu(const float* gate, const float* up, int64_t rows, int64_t n_ff, float* out, Cpu cpu) {
  const int64_t width = cpu == Cpu::Avx2 ? 8 : 16;
  const int64_t full = n_ff / width * width;
  std::vector<float> e(static_cast<size_t>(full));
  for (int64_t t = 0; t < rows; ++t) {
    const float* x = gate + t * n_ff;
    const float* g = up + t * n_ff;
    float* y = out + t * n_ff;
    for (int64_t i = 0; i < full; ++i) e[size_t(i)] = 0.0f - x[i];
    v_expf_row(e.data(), full, e.data(), cpu);
    for (int64_t i = 0; i < full; ++i) y[i] = x[i] / (1.0f + e[size_t(i)]) * g[i];
    for (int64_t i = full; i < n_ff; ++i) y[i] = x[i] / (1.0f + std::exp(-x[i])) * g[i];
  }
}

float gelu_tanh(float x) {
  constexpr float kSqrt2OverPi = 0.79788456080286535587989211986876f, kCoefA = 0.044715f;
  // As GCC compiles ggml's expression for x86-64 with FMA: A·x·x + 1 as one fused step.
  return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * x * std::fma(kCoefA * x, x, 1.0f)));
}

namespace {

// gelu_tanh at every half-precision input, rounded to half (ggml_table_gelu_f16).
const std::vector<uint16_t>& gelu_table() {
  static const std::vector<uint16_t> table = [] {
    std::vector<uint16_t> t(size_t(1) << 16);
    for (size_t i = 0; i < t.size(); ++i) t[i] = f32_to_f16(gelu_tanh(f16_to_f32(uint16_t(i))));
    return t;
  }();
  return table;
}

}  // namespace

void geglu(const float* gate, const float* up, int64_t n, float* out) {
  const std::vector<uint16_t>& table = gelu_table();
  for (int64_t i = 0; i < n; ++i) {
    const float x = gate[i];
    if (x <= -10.0f) out[i] = 0.0f;
    else if (x >= 10.0f) out[i] = x * up[i];
    else out[i] = f16_to_f32(table[f32_to_f16(x)]) * up[i];
  }
}

// --- Q8_0-activation products ----------------------------------------------------------

namespace {
// Element 4t + r of a block of 32 goes to r·8 + t, so that the four codes of lane t are one
// vector apart.
inline int64_t lane_major(int64_t e) { return (e & 3) * 8 + (e >> 2); }
}  // namespace

void quantize_q8_0(const float* x, int64_t n, int64_t ne0, ActCodes& a, ThreadPool& pool) {
  if (ne0 % 32) throw_error("Q8_0 activations need rows of a multiple of 32, got {}", ne0);
  const int64_t nb = ne0 / 32;
  a.n = n, a.ne0 = ne0;
  a.q.resize(size_t(n * ne0)), a.d.resize(size_t(n * nb)), a.bsums.clear();
  pool.parallel_for(size_t(n * nb), [&](size_t b0, size_t b1, int) {
    float codes[32];
    for (int64_t b = int64_t(b0); b < int64_t(b1); ++b) {
      a.d[size_t(b)] = q8_0_codes(x + b * 32, codes);
      for (int64_t j = 0; j < 32; ++j) a.q[size_t(b * 32 + lane_major(j))] = codes[j];
    }
  });
}

void matmul_q8_0(const WeightView& w, const ActCodes& a, float* y, MatmulContext& ctx) {
  const int64_t ne0 = w.ne0, nb = ne0 / 32, n = a.n;
  if (a.ne0 != ne0) throw_error("{}: activations of {} columns for a weight of {}", w.name, a.ne0, ne0);
  // Cache blocking: a group of weight rows (decoded once) meets a chunk of activation rows, both
  // held in L2 (16 x 2048 and 32 x 2048 floats), instead of every weight row streaming all the
  // activations; four activation rows share each pass over a weight row (q8_lanes4). Each
  // output is still q8_lanes's chain: neither changes a bit.
  constexpr int64_t kRows = 16, kChunk = 32;
  const int64_t tasks = (w.ne1 + kRows - 1) / kRows;
  const size_t block_bytes = w.row_bytes / size_t(nb);
  ctx.pool().parallel_for(size_t(tasks), [&](size_t b, size_t e, int) {
    std::vector<float> row(static_cast<size_t>(ne0)), wq(static_cast<size_t>(kRows * ne0)),
        wd(static_cast<size_t>(kRows * nb));
    float lanes[32];
    for (int64_t task = int64_t(b); task < int64_t(e); ++task) {
      const int64_t r0 = task * kRows, rows = std::min(kRows, w.ne1 - r0);
      for (int64_t i = 0; i < rows; ++i) {
        // The block scale is the row's first two bytes of each block (Q5_0 and Q8_0 alike);
        // the codes are the dequantized values divided by it (exact: d·q has at most 16 bits).
        dequantize_rows(w, r0 + i, r0 + i + 1, row.data());
        for (int64_t bl = 0; bl < nb; ++bl) {
          uint16_t h;
          std::memcpy(&h, w.row(r0 + i) + size_t(bl) * block_bytes, 2);
          const float d = f16_to_f32(h);
          wd[size_t(i * nb + bl)] = d;
          for (int64_t j = 0; j < 32; ++j)
            wq[size_t(i * ne0 + bl * 32 + lane_major(j))] = d != 0.0f ? row[size_t(bl * 32 + j)] / d : 0.0f;
        }
      }
      for (int64_t t0 = 0; t0 < n; t0 += kChunk)
        for (int64_t i = 0; i < rows; ++i) {
          const float *wqi = wq.data() + i * ne0, *wdi = wd.data() + i * nb;
          const int64_t t1 = std::min(n, t0 + kChunk);
          int64_t t = t0;
          for (; t + 4 <= t1; t += 4) {
            detail::q8_lanes4(wqi, wdi, a.q.data() + t * ne0, ne0, a.d.data() + t * nb, nb, nb, lanes);
            for (int64_t k = 0; k < 4; ++k) y[(t + k) * w.ne1 + r0 + i] = detail::lanes_sum(lanes + 8 * k);
          }
          for (; t < t1; ++t) {
            detail::q8_lanes(wqi, wdi, a.q.data() + t * ne0, a.d.data() + t * nb, nb, lanes);
            y[t * w.ne1 + r0 + i] = detail::lanes_sum(lanes);
          }
        }
    }
  });
}

// --- one input, converted once per format -------------------------------------------------

ExactInput::ExactInput(ExactBuffers& b, const float* x, int64_t n, int64_t ne0, ThreadPool& pool,
                       Cpu cpu)
    : b_(b), x_(x), n_(n), ne0_(ne0), pool_(pool), cpu_(cpu) {
  if (b.rounded.size() < size_t(n * ne0))
    throw_error("exact input: {} rows of {} exceed the buffer of {} floats", n, ne0, b.rounded.size());
}

const float* ExactInput::rounded(quant::ActFormat f) {
  if (f == quant::ActFormat::F32) return x_;
  if (f != rounded_as_) round_activations(f, x_, n_, ne0_, b_.rounded.data());
  rounded_as_ = f;
  return b_.rounded.data();
}

const ActCodes& ExactInput::q8_0() {
  if (!q80_) quantize_q8_0(x_, n_, ne0_, b_.q80, pool_);
  q80_ = true;
  return b_.q80;
}

const ActCodes& ExactInput::q8_k() {
  if (!q8k_) quantize_q8_k(x_, n_, ne0_, b_.q8k, pool_);
  q8k_ = true;
  return b_.q8k;
}

// --- F32 (the MoE router) -------------------------------------------------------------------

void matmul_f32_lanes(const WeightView& w, const float* x, int64_t n, float* y, Cpu cpu) {
  const int64_t width = cpu == Cpu::Avx2 ? 8 : 16;
  if (w.type != GgmlType::F32 || w.ne0 % width)
    throw_error("{}: the tinyBLAS F32 product needs F32 rows of a multiple of {}", w.name, width);
  for (int64_t r = 0; r < w.ne1; ++r) {
    const auto* wr = reinterpret_cast<const float*>(w.row(r));
    for (int64_t t = 0; t < n; ++t) {
      const float* xt = x + t * w.ne0;
      float l[16] = {};
      for (int64_t i = 0; i < w.ne0; i += width)
        for (int64_t j = 0; j < width; ++j) l[j] = std::fma(wr[i + j], xt[i + j], l[j]);
      y[t * w.ne1 + r] = width == 8 ? detail::lanes_sum(l) : reduce16(l);
    }
  }
}

// --- BF16 (AVX512-BF16) ----------------------------------------------------------------

namespace {

// One VDPBF16PS step of 32 values into 16 lanes.
inline void dpbf16(float* acc, const float* w, const float* x) {
  for (int l = 0; l < 16; ++l) {
    acc[l] += w[2 * l] * x[2 * l];
    acc[l] += w[2 * l + 1] * x[2 * l + 1];
  }
}

}  // namespace

void matmul_bf16(const WeightView& w, const float* xb, int64_t n, float* y, MatmulContext& ctx,
                 bool vec_dot) {
  if (w.type != GgmlType::BF16 || w.ne0 % 64)
    throw_error("{}: the AVX512-BF16 product needs BF16 rows of a multiple of 64", w.name);
  const int64_t k = w.ne0;
  ctx.pool().parallel_for(size_t(w.ne1), [&](size_t b, size_t e, int thread) {
    float* wr = ctx.scratch(thread);  // one weight row in float
    for (size_t r = b; r < e; ++r) {
      bf16_to_f32_row(reinterpret_cast<const uint16_t*>(w.row(int64_t(r))), wr, k);
      for (int64_t t = 0; t < n; ++t) {
        const float* xt = xb + t * k;
        float c1[16] = {}, c2[16] = {};
        if (vec_dot) {
          for (int64_t i = 0; i < k; i += 64) {
            dpbf16(c1, wr + i, xt + i);
            dpbf16(c2, wr + i + 32, xt + i + 32);
          }
          y[t * w.ne1 + int64_t(r)] = float(double(reduce16(c1)) + double(reduce16(c2)));
        } else {
          for (int64_t i = 0; i < k; i += 32) dpbf16(c1, wr + i, xt + i);
          y[t * w.ne1 + int64_t(r)] = reduce16(c1);
        }
      }
    }
  });
}

// --- F16 rows not a multiple of 8 ------------------------------------------------------

namespace {
float vec_dot_f16(const uint16_t* w, const float* x16, int64_t n) {
  const int64_t np = n & ~int64_t(31);
  float acc[4][8] = {};
  for (int64_t i = 0; i < np; i += 32)
    for (int j = 0; j < 4; ++j)
      for (int l = 0; l < 8; ++l) {
        const int64_t e = i + j * 8 + l;
        acc[j][l] = std::fma(f16_to_f32(w[e]), x16[e], acc[j][l]);
      }
  float a[8];
  for (int l = 0; l < 8; ++l) a[l] = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]);
  const float t0 = a[0] + a[4], t1 = a[1] + a[5], t2 = a[2] + a[6], t3 = a[3] + a[7];
  double sum = double((t0 + t1) + (t2 + t3));
  for (int64_t i = np; i < n; ++i) sum += double(f16_to_f32(w[i]) * x16[i]);
  return float(sum);
}
}  // namespace

void matmul_f16(const WeightView& w, const float* x16, int64_t n, float* y, MatmulContext& ctx) {
  const int64_t ne0 = w.ne0;
  ctx.pool().parallel_for(size_t(w.ne1), [&](size_t b, size_t e, int) {
    for (int64_t r = int64_t(b); r < int64_t(e); ++r) {
      const auto* wr = reinterpret_cast<const uint16_t*>(w.row(r));
      for (int64_t t = 0; t < n; ++t) y[t * w.ne1 + r] = vec_dot_f16(wr, x16 + t * ne0, ne0);
    }
  });
}

// --- scalar references of the SIMD pieces ----------------------------------------------------

namespace detail::ref {
void key_chains(const float* q, const float* kt, int64_t hd, float* s) {
  for (int64_t j = 0; j < 64; ++j) {
    float acc = 0.0f;
    for (int64_t d = 0; d < hd; ++d) acc = std::fma(q[d], kt[d * 64 + j], acc);
    s[j] = acc;
  }
}
void value_chains(const float* p, const float* v, int64_t ldv, int64_t n_keys, int64_t hd, float* acc) {
  for (int64_t d = 0; d < hd; ++d)
    for (int64_t i = 0; i < n_keys; ++i) acc[d] = std::fma(p[i], v[i * ldv + d], acc[d]);
}
void q8_lanes(const float* wq, const float* wd, const float* xq, const float* xd, int64_t nb,
              float* lanes) {
  for (int t = 0; t < 8; ++t) lanes[t] = 0.0f;
  for (int64_t b = 0; b < nb; ++b) {
    const float dd = wd[b] * xd[b];
    for (int t = 0; t < 8; ++t) {
      float s = 0;  // integers below 2^24: exact in any order
      for (int r = 0; r < 4; ++r) s += wq[b * 32 + r * 8 + t] * xq[b * 32 + r * 8 + t];
      lanes[t] = std::fma(dd, s, lanes[t]);
    }
  }
}
void v_expf_row(const float* x, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = v_expf(x[i]);
}
void scaled_update(const float* c, const float* dw, float dt, int64_t n, float* acc) {
  for (int64_t r = 0; r < n; ++r) acc[r] = std::fma(c[r], dw[r] * dt, acc[r]);
}
void pair_update(const float* c, const float* dw, const float* dmin, const float* m0, const float* m1,
                 float dt, float b0, float b1, int64_t n, float* acc, float* accm) {
  for (int64_t r = 0; r < n; ++r) {
    acc[r] = std::fma(c[r], dw[r] * dt, acc[r]);
    accm[r] = std::fma(m0[r] * b0 + m1[r] * b1, dmin[r] * dt, accm[r]);  // integers: exact
  }
}
}  // namespace detail::ref

}  // namespace imq::kernels::ggml
