// ggml's CPU arithmetic (kernels/ggml_exact.h): scalar references, the Q8_0 and F16 products and
// the two flash-attention paths. The SIMD inner loops are in ggml_exact_hwy.cpp.
#include "kernels/ggml_exact.h"

#include <cblas.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/fp16.h"
#include "imq/error.h"
#include "imq/ggml_types.h"
#include "quant/kquants/kquants.h"

namespace imq::kernels::ggml {

float v_expf(float x) {
  constexpr float kShift = 0x1.8p23f;
  const float z = std::fma(x, 0x1.715476p+0f, kShift);
  const float n = z - kShift;
  const float b = std::fma(-n, 0x1.7f7d1cp-20f, std::fma(-n, 0x1.62e4p-1f, x));
  const uint32_t e = std::bit_cast<uint32_t>(z) << 23;
  const float k = std::bit_cast<float>(e + std::bit_cast<uint32_t>(1.0f));
  const float u = b * b;
  const float j = std::fma(std::fma(std::fma(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u,
                                    std::fma(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
                           u, 0x1.ffffecp-1f * b);
  if (!(std::fabs(n) > 126.0f)) return std::fma(j, k, k);
  const uint32_t g = n <= 0.0f ? 0x82000000u : 0u;
  const float s1 = std::bit_cast<float>(g + 0x7f000000u);
  if (std::fabs(n) > 192.0f) return s1 * s1;
  const float s2 = std::bit_cast<float>(e - g);
  return std::fma(s2, j, s2) * s1;
}

void swiglu(const float* gate, const float* up, int64_t rows, int64_t n_ff, float* out) {
  const int64_t full = n_ff / 8 * 8;
  std::vector<float> e(static_cast<size_t>(full));
  for (int64_t t = 0; t < rows; ++t) {
    const float* x = gate + t * n_ff;
    const float* g = up + t * n_ff;
    float* y = out + t * n_ff;
    for (int64_t i = 0; i < full; ++i) e[size_t(i)] = 0.0f - x[i];
    v_expf_row(e.data(), full, e.data());
    for (int64_t i = 0; i < full; ++i) y[i] = x[i] / (1.0f + e[size_t(i)]) * g[i];
    for (int64_t i = full; i < n_ff; ++i) y[i] = x[i] / (1.0f + std::exp(-x[i])) * g[i];
  }
}

// --- Q8_0-activation products ----------------------------------------------------------

bool exact_q8_0_weight(uint32_t type) {
  return type == uint32_t(GgmlType::Q5_0) || type == uint32_t(GgmlType::Q8_0);
}

namespace {

// Element 4t + r of a block of 32 goes to r·8 + t, so that the four codes of lane t are one
// vector apart.
inline int64_t lane_major(int64_t e) { return (e & 3) * 8 + (e >> 2); }

// Q8_0 codes of one row as ggml's AVX2 quantize_row_q8_0 makes them, as floats (lane-major).
void quantize_row_q8(const float* x, int64_t ne0, float* codes, float* scales) {
  for (int64_t b = 0; b < ne0 / 32; ++b) {
    const float* xb = x + b * 32;
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(xb[j]));
    scales[b] = f16_to_f32(f32_to_f16(amax / 127.f));
    const float id = amax != 0.0f ? 127.f / amax : 0.0f;
    for (int64_t j = 0; j < 32; ++j) codes[b * 32 + lane_major(j)] = std::nearbyint(xb[j] * id);
  }
}

float lanes_sum(const float* l) { return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7])); }

}  // namespace

void matmul_q8_0(const WeightView& w, const float* x, int64_t n, float* y, MatmulContext& ctx) {
  const int64_t ne0 = w.ne0, nb = ne0 / 32;
  if (ne0 % 32) throw_error("{}: Q8_0 products need rows of a multiple of 32, got {}", w.name, ne0);
  std::vector<float> xq(size_t(n * ne0)), xd(size_t(n * nb));
  for (int64_t t = 0; t < n; ++t) quantize_row_q8(x + t * ne0, ne0, xq.data() + t * ne0, xd.data() + t * nb);
  const int64_t rows_per_task = 16;
  const int64_t tasks = (w.ne1 + rows_per_task - 1) / rows_per_task;
  ctx.pool().parallel_for(size_t(tasks), [&](size_t b, size_t e, int) {
    std::vector<float> row(static_cast<size_t>(ne0)), wq(static_cast<size_t>(ne0)), wd(static_cast<size_t>(nb));
    float lanes[8];
    for (int64_t r = int64_t(b) * rows_per_task; r < std::min(w.ne1, int64_t(e) * rows_per_task); ++r) {
      // The block scale is the row's first two bytes of each block (Q5_0 and Q8_0 alike);
      // the codes are the dequantized values divided by it (exact: d·q has at most 16 bits).
      dequantize_rows(w, r, r + 1, row.data());
      const size_t block_bytes = w.row_bytes / size_t(nb);
      for (int64_t bl = 0; bl < nb; ++bl) {
        uint16_t h;
        std::memcpy(&h, w.row(r) + size_t(bl) * block_bytes, 2);
        const float d = f16_to_f32(h);
        wd[size_t(bl)] = d;
        for (int64_t j = 0; j < 32; ++j)
          wq[size_t(bl * 32 + lane_major(j))] = d != 0.0f ? row[size_t(bl * 32 + j)] / d : 0.0f;
      }
      for (int64_t t = 0; t < n; ++t) {
        detail::q8_lanes(wq.data(), wd.data(), xq.data() + t * ne0, xd.data() + t * nb, nb, lanes);
        y[t * w.ne1 + r] = lanes_sum(lanes);
      }
    }
  });
}

// --- K-quant products (Q8_K activations) ------------------------------------------------

bool exact_q8_k_weight(uint32_t type) {
  return type == uint32_t(GgmlType::Q4_K) || type == uint32_t(GgmlType::Q6_K);
}

namespace {

}  // namespace

void quantize_q8_k(const float* x, int64_t n, int64_t ne0, Q8KActivations& r, ThreadPool& pool) {
  if (ne0 % 256) throw_error("Q8_K activations need rows of a multiple of 256, got {}", ne0);
  const int64_t nb = ne0 / 256;
  r.n = n, r.ne0 = ne0;
  r.q.resize(size_t(n * ne0));
  r.d.resize(size_t(n * nb));
  r.bsums.resize(size_t(n * nb * 16));
  pool.parallel_for(size_t(n * nb), [&](size_t b0, size_t b1, int) {
    for (int64_t b = int64_t(b0); b < int64_t(b1); ++b) {
      const float* xb = x + b * 256;
      float* q = r.q.data() + b * 256;
      int32_t* bs = r.bsums.data() + b * 16;
      float amax = 0, max = 0;
      for (int j = 0; j < 256; ++j)
        if (std::fabs(xb[j]) > amax) amax = std::fabs(xb[j]), max = xb[j];
      std::fill(bs, bs + 16, 0);
      if (amax == 0.0f) {
        std::fill(q, q + 256, 0.0f);
        r.d[size_t(b)] = 0.0f;
        continue;
      }
      const float iscale = -127.f / max;
      for (int j = 0; j < 256; ++j) {
        const int v = std::min(127, int(std::nearbyint(iscale * xb[j])));
        q[j] = float(v);
        bs[j / 16] += v;
      }
      r.d[size_t(b)] = 1 / iscale;
    }
  });
}

namespace {

// One Q4_K weight row decoded: codes 0..15 (element order), scale and min codes, d and dmin.
struct KRow {
  std::vector<float> q;        // [ne0]
  std::vector<int32_t> sc, m;  // 8 per super-block
  std::vector<float> d, dmin;  // per super-block
};

void decode_row(const WeightView& w, int64_t r, KRow& k) {
  const int64_t nb = w.ne0 / 256;
  k.q.resize(size_t(w.ne0)), k.d.resize(size_t(nb)), k.dmin.resize(size_t(nb));
  k.sc.resize(size_t(nb * 8)), k.m.resize(size_t(nb * 8));
  const auto* blocks = reinterpret_cast<const quant::BlockQ4K*>(w.row(r));
  for (int64_t b = 0; b < nb; ++b) {
    const quant::BlockQ4K& x = blocks[b];
    k.d[size_t(b)] = f16_to_f32(x.d), k.dmin[size_t(b)] = f16_to_f32(x.dmin);
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      quant::k4_scale_min(x.scales, j, &sc, &m);
      k.sc[size_t(b * 8 + j)] = sc, k.m[size_t(b * 8 + j)] = m;
    }
    float* q = k.q.data() + b * 256;
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 32; ++l) q[64 * c + l] = float(x.qs[32 * c + l] & 15), q[64 * c + 32 + l] = float(x.qs[32 * c + l] >> 4);
  }
}

// ggml_vec_dot_q4_K_q8_K (AVX2): eight lanes of 4-element groups, the mins in four lanes.
float q4_k_vec_dot(const KRow& w, const float* aq, const float* ad, const int32_t* bsums, int64_t nb) {
  float acc[8] = {}, am[4] = {};
  for (int64_t b = 0; b < nb; ++b) {
    const float d = ad[b] * w.d[size_t(b)], dmin = (-ad[b]) * w.dmin[size_t(b)];
    for (int L = 0; L < 8; ++L) {
      int64_t T = 0;
      for (int j = 0; j < 8; ++j) {
        const int64_t o = b * 256 + j * 32 + 4 * L;
        int64_t s4 = 0;
        for (int r = 0; r < 4; ++r) s4 += int64_t(w.q[size_t(o + r)]) * int64_t(aq[o + r]);
        T += w.sc[size_t(b * 8 + j)] * s4;
      }
      acc[L] = std::fma(d, float(T), acc[L]);
    }
    for (int k = 0; k < 4; ++k) {
      const int32_t B0 = bsums[b * 16 + 4 * k] + bsums[b * 16 + 4 * k + 1];
      const int32_t B1 = bsums[b * 16 + 4 * k + 2] + bsums[b * 16 + 4 * k + 3];
      am[k] = std::fma(dmin, float(w.m[size_t(b * 8 + 2 * k)] * B0 + w.m[size_t(b * 8 + 2 * k + 1)] * B1), am[k]);
    }
  }
  return lanes_sum(acc) + ((am[0] + am[2]) + (am[1] + am[3]));
}

}  // namespace

namespace {

// Integer-valued floats make SGEMM exact: the products of pre-scaled codes and activation codes
// and their sums over the K = 64 (Q4_K, a pair of sub-blocks) or 32 (Q6_K, one lane) columns of
// one call stay below 2^24 (Q4_K: 64·945·127; Q6_K: 32·4096·127). So ggml's integer sums come
// out of OpenBLAS in any order, and only the float steps after them follow ggml's order.
constexpr int64_t kKRows = 128;  // weight rows per task

void sgemm_codes(const float* a, int64_t n, const float* w, int64_t rows, int64_t ld, int64_t k, float* c) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(n), int(rows), int(k), 1.0f, a, int(ld), w,
              int(ld), 0.0f, c, int(rows));
}

// Q4_K rows [r0, r0+rows) of a repacked weight.
// Per-thread buffers of a tile, reused from tile to tile.
struct KTile {
  std::vector<float> ws, dw, dm, mc, acc, accm, c;
  std::vector<double> S;
  void size(int64_t rows, int64_t ne0, int64_t n, int64_t lanes) {
    const int64_t nb = ne0 / 256;
    ws.resize(size_t(rows * ne0)), dw.resize(size_t(rows * nb)), dm.resize(size_t(rows * nb));
    mc.resize(size_t(rows * nb * 8)), c.resize(size_t(n * rows)), S.resize(size_t(n * rows));
    acc.assign(size_t(lanes * n * rows), 0.0f), accm.assign(size_t(n * rows), 0.0f);
  }
};

void q4_k_tile(const WeightView& w, int64_t r0, int64_t rows, const std::vector<float>& aq,
               const Q8KActivations& a, int64_t n, int64_t n_gemm, float* y, KTile& T) {
  const int64_t ne0 = w.ne0, nb = ne0 / 256;
  T.size(rows, ne0, n, 1);
  auto &ws = T.ws, &dw = T.dw, &dm = T.dm, &mc = T.mc, &acc = T.acc, &accm = T.accm, &c = T.c;
  auto& S = T.S;
  for (int64_t r = 0; r < rows; ++r) {
    const auto* blocks = reinterpret_cast<const quant::BlockQ4K*>(w.row(r0 + r));
    for (int64_t b = 0; b < nb; ++b) {
      const quant::BlockQ4K& x = blocks[b];
      dw[size_t(b * rows + r)] = f16_to_f32(x.d), dm[size_t(b * rows + r)] = f16_to_f32(x.dmin);
      int sc[8];
      for (int j = 0; j < 8; ++j) {
        uint8_t s6, m6;
        quant::k4_scale_min(x.scales, j, &s6, &m6);
        sc[j] = s6, mc[size_t((b * 8 + j) * rows + r)] = float(m6);
      }
      float* o = ws.data() + r * ne0 + b * 256;
      for (int c = 0; c < 4; ++c)
        for (int l = 0; l < 32; ++l) {
          o[64 * c + l] = float(sc[2 * c] * (x.qs[32 * c + l] & 15));
          o[64 * c + 32 + l] = float(sc[2 * c + 1] * (x.qs[32 * c + l] >> 4));
        }
    }
  }
  for (int64_t b = 0; b < nb; ++b) {
    if (n_gemm < n) std::fill(S.begin() + n_gemm * rows, S.begin() + n * rows, 0.0);
    for (int64_t p = 0; p < 4; ++p) {
      const int64_t off = b * 256 + p * 64;
      sgemm_codes(aq.data() + off, n, ws.data() + off, rows, ne0, 64, c.data());
      const float* m0 = mc.data() + (b * 8 + 2 * p) * rows;
      const float* m1 = m0 + rows;
      for (int64_t t = 0; t < n_gemm; ++t) {
        const float dt = a.d[size_t(t * nb + b)];
        const int32_t* bs = a.bsums.data() + (t * nb + b) * 16 + p * 4;
        detail::pair_update(c.data() + t * rows, dw.data() + b * rows, dm.data() + b * rows, m0, m1, dt,
                            float(bs[0] + bs[1]), float(bs[2] + bs[3]), rows, acc.data() + t * rows,
                            accm.data() + t * rows);
      }
      for (int64_t t = n_gemm; t < n; ++t)
        for (int64_t r = 0; r < rows; ++r) S[size_t(t * rows + r)] += double(c[size_t(t * rows + r)]);
    }
    // gemv rows: one fused step per super-block with the whole integer sums.
    for (int64_t t = n_gemm; t < n; ++t) {
      const float dt = a.d[size_t(t * nb + b)];
      const int32_t* bs = a.bsums.data() + (t * nb + b) * 16;
      for (int64_t r = 0; r < rows; ++r) {
        int64_t M = 0;
        for (int j = 0; j < 8; ++j) M += int64_t(mc[size_t((b * 8 + j) * rows + r)]) * (bs[2 * j] + bs[2 * j + 1]);
        const size_t i = size_t(t * rows + r);
        acc[i] = std::fma(float(S[i]), dw[size_t(b * rows + r)] * dt, acc[i]);
        accm[i] = std::fma(float(M), dm[size_t(b * rows + r)] * dt, accm[i]);
      }
    }
  }
  for (int64_t t = 0; t < n; ++t)
    for (int64_t r = 0; r < rows; ++r) y[t * w.ne1 + r0 + r] = acc[size_t(t * rows + r)] - accm[size_t(t * rows + r)];
}

// Q6_K rows [r0, r0+rows): columns regrouped by ggml's lane (lane L of run r: elements
// 32r+4L..+3), each lane its own K = 32 product per super-block.
inline int64_t q6_lane_column(int64_t e) {  // element e of a super-block -> regrouped position
  const int64_t run = e / 32, L = (e % 32) / 4, k = e % 4;
  return L * 32 + run * 4 + k;
}

void q6_k_tile(const WeightView& w, int64_t r0, int64_t rows, const std::vector<float>& aq6,
               const Q8KActivations& a, int64_t n, float* y, KTile& T) {
  const int64_t ne0 = w.ne0, nb = ne0 / 256;
  T.size(rows, ne0, n, 8);
  auto &ws = T.ws, &dw = T.dw, &acc = T.acc, &c = T.c;
  for (int64_t r = 0; r < rows; ++r) {
    const auto* blocks = reinterpret_cast<const quant::BlockQ6K*>(w.row(r0 + r));
    for (int64_t b = 0; b < nb; ++b) {
      const quant::BlockQ6K& x = blocks[b];
      dw[size_t(b * rows + r)] = f16_to_f32(x.d);
      float* o = ws.data() + r * ne0 + b * 256;
      auto put = [&](int64_t e, int q) { o[q6_lane_column(e)] = float(x.scales[e / 16] * q); };
      for (int h = 0; h < 2; ++h)
        for (int l = 0; l < 32; ++l) {
          const uint8_t* ql = x.ql + 64 * h;
          const uint8_t* qh = x.qh + 32 * h;
          put(128 * h + l, ((ql[l] & 15) | ((qh[l] & 3) << 4)) - 32);
          put(128 * h + 32 + l, ((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4)) - 32);
          put(128 * h + 64 + l, ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
          put(128 * h + 96 + l, ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
        }
    }
  }
  for (int64_t b = 0; b < nb; ++b)
    for (int64_t L = 0; L < 8; ++L) {
      const int64_t off = b * 256 + L * 32;
      sgemm_codes(aq6.data() + off, n, ws.data() + off, rows, ne0, 32, c.data());
      for (int64_t t = 0; t < n; ++t)
        detail::scaled_update(c.data() + t * rows, dw.data() + b * rows, a.d[size_t(t * nb + b)], rows,
                              acc.data() + (L * n + t) * rows);
    }
  for (int64_t t = 0; t < n; ++t)
    for (int64_t r = 0; r < rows; ++r) {
      float l[8];
      for (int L = 0; L < 8; ++L) l[L] = acc[size_t((L * n + t) * rows + r)];
      y[t * w.ne1 + r0 + r] = lanes_sum(l);
    }
}

}  // namespace

void matmul_q8_k(const WeightView& w, const Q8KActivations& a, float* y, MatmulContext& ctx, bool gemv_only) {
  const int64_t ne0 = w.ne0, nb = ne0 / 256, n = a.n;
  if (a.ne0 != ne0) throw_error("{}: activations of {} columns for a weight of {}", w.name, a.ne0, ne0);
  if (!exact_q8_k_weight(w.type)) throw_error("{}: no Q8_K product for this type", w.name);
  const bool q4 = w.type == uint32_t(GgmlType::Q4_K);
  if (q4 && w.ne1 % 8 != 0) {  // not repacked: ggml_vec_dot_q4_K_q8_K, row by row
    ctx.pool().parallel_for(size_t(w.ne1), [&](size_t b, size_t e, int) {
      KRow k;
      for (int64_t r = int64_t(b); r < int64_t(e); ++r) {
        decode_row(w, r, k);
        for (int64_t t = 0; t < n; ++t)
          y[t * w.ne1 + r] = q4_k_vec_dot(k, a.q.data() + t * ne0, a.d.data() + t * nb, a.bsums.data() + t * nb * 16, nb);
      }
    });
    return;
  }
  // Q6_K: activation codes regrouped by lane.
  std::vector<float> regrouped;
  if (!q4) {
    regrouped.resize(a.q.size());
    ctx.pool().parallel_for(size_t(n * nb), [&](size_t b0, size_t b1, int) {
      for (int64_t b = int64_t(b0); b < int64_t(b1); ++b)
        for (int64_t e = 0; e < 256; ++e) regrouped[size_t(b * 256 + q6_lane_column(e))] = a.q[size_t(b * 256 + e)];
    });
  }
  const int64_t n_gemm = gemv_only || n < 4 ? 0 : n - n % 4;
  const int64_t tasks = (w.ne1 + kKRows - 1) / kKRows;
  ctx.pool().parallel_for(size_t(tasks), [&](size_t b, size_t e, int) {
    KTile T;
    for (int64_t task = int64_t(b); task < int64_t(e); ++task) {
      const int64_t r0 = task * kKRows, rows = std::min(kKRows, w.ne1 - r0);
      if (q4)
        q4_k_tile(w, r0, rows, a.q, a, n, n_gemm, y, T);
      else
        q6_k_tile(w, r0, rows, regrouped, a, n, y, T);
    }
  });
}

// --- F32 (the MoE router) -------------------------------------------------------------------

void matmul_f32_lanes(const WeightView& w, const float* x, int64_t n, float* y) {
  if (w.type != uint32_t(GgmlType::F32) || w.ne0 % 8)
    throw_error("{}: the tinyBLAS F32 product needs F32 rows of a multiple of 8", w.name);
  for (int64_t r = 0; r < w.ne1; ++r) {
    const auto* wr = reinterpret_cast<const float*>(w.row(r));
    for (int64_t t = 0; t < n; ++t) {
      const float* xt = x + t * w.ne0;
      float l[8] = {};
      for (int64_t i = 0; i < w.ne0; i += 8)
        for (int j = 0; j < 8; ++j) l[j] = std::fma(wr[i + j], xt[i + j], l[j]);
      y[t * w.ne1 + r] = lanes_sum(l);
    }
  }
}

// --- F16 rows not a multiple of 8 ------------------------------------------------------

bool exact_f16_weight(uint32_t type, int64_t ne0) {
  return type == uint32_t(GgmlType::F16) && ne0 % 8 != 0;
}

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

void matmul_f16(const WeightView& w, const float* x, int64_t n, float* y, MatmulContext& ctx) {
  const int64_t ne0 = w.ne0;
  std::vector<float> x16(size_t(n * ne0));
  for (size_t i = 0; i < x16.size(); ++i) x16[i] = f16_to_f32(f32_to_f16(x[i]));
  ctx.pool().parallel_for(size_t(w.ne1), [&](size_t b, size_t e, int) {
    for (int64_t r = int64_t(b); r < int64_t(e); ++r) {
      const auto* wr = reinterpret_cast<const uint16_t*>(w.row(r));
      for (int64_t t = 0; t < n; ++t) y[t * w.ne1 + r] = vec_dot_f16(wr, x16.data() + t * ne0, ne0);
    }
  });
}

// --- attention ---------------------------------------------------------------------------

namespace {
constexpr int64_t kTile = 64;  // ggml's query and key tile (GGML_FA_TILE_Q / _KV)
constexpr float kNegInf = -std::numeric_limits<float>::infinity();
inline float round_half(float v) { return f16_to_f32(f32_to_f16(v)); }

}  // namespace

bool attention_tiled_path(int64_t n_rows, int64_t hd) { return n_rows >= kTile && hd % 8 == 0; }

void attention(const AttentionShape& s, const float* q, const float* k, const float* v, int64_t p0,
               int64_t n, float* out, ThreadPool& pool) {
  const int64_t hd = s.hd;
  const float scale = 1.0f / std::sqrt(float(hd));
  if (attention_tiled_path(n, hd)) {
    const int64_t n_blocks = (n + kTile - 1) / kTile;
    pool.parallel_for(size_t(s.n_head * n_blocks), [&](size_t b, size_t e, int) {
      std::vector<float> kt(size_t(hd * kTile)), sc(kTile), vkq(size_t(kTile * hd)), M(kTile), S(kTile);
      for (size_t task = b; task < e; ++task) {
        const int64_t h = int64_t(task) / n_blocks, i0 = (int64_t(task) % n_blocks) * kTile;
        const int64_t m = std::min(kTile, n - i0), g = h / s.group;
        std::fill(M.begin(), M.end(), kNegInf);
        std::fill(S.begin(), S.end(), 0.0f);
        std::fill(vkq.begin(), vkq.end(), 0.0f);
        const int64_t last_key = p0 + i0 + m - 1;
        for (int64_t t0 = 0; t0 <= last_key; t0 += kTile) {
          const int64_t nk = std::min(kTile, last_key + 1 - t0);
          for (int64_t d = 0; d < hd; ++d)
            for (int64_t j = 0; j < kTile; ++j)
              kt[size_t(d * kTile + j)] = j < nk ? k[(t0 + j) * s.ldkv + g * hd + d] : 0.0f;
          for (int64_t i = 0; i < m; ++i) {
            const int64_t P = p0 + i0 + i;  // keys 0..P are visible
            if (t0 > P) continue;           // every score of this tile is masked
            const int64_t valid = std::min(kTile, P + 1 - t0);
            detail::key_chains(q + (i0 + i) * s.ldq + h * hd, kt.data(), hd, sc.data());
            float tmax = kNegInf;
            for (int64_t j = 0; j < kTile; ++j) {
              sc[size_t(j)] = j < valid ? sc[size_t(j)] * scale : kNegInf;
              tmax = std::max(tmax, sc[size_t(j)]);
            }
            float& Mi = M[size_t(i)];
            float& Si = S[size_t(i)];
            float* acc = vkq.data() + i * hd;
            const float Mnew = std::fmax(Mi, tmax);
            if (Mnew > Mi) {
              const float ms = std::exp(Mi - Mnew);
              for (int64_t d = 0; d < hd; ++d) acc[d] *= ms;
              Si *= ms;
            }
            Mi = Mnew;
            for (int64_t j = 0; j < kTile; ++j) sc[size_t(j)] = sc[size_t(j)] - Mnew;
            v_expf_row(sc.data(), kTile, sc.data());
            double sum = 0;
            for (int64_t gi = 0; gi < kTile; gi += 8) sum += double(lanes_sum(sc.data() + gi));
            Si = float(double(Si) + sum);
            detail::value_chains(sc.data(), v + t0 * s.ldkv + g * hd, s.ldkv, valid, hd, acc);
          }
        }
        for (int64_t i = 0; i < m; ++i) {
          const float inv = S[size_t(i)] == 0.0f ? 0.0f : 1.0f / S[size_t(i)];
          for (int64_t d = 0; d < hd; ++d) out[(i0 + i) * s.ldq + h * hd + d] = vkq[size_t(i * hd + d)] * inv;
        }
      }
    });
    return;
  }
  // Per-row path: one key at a time, values accumulated in half precision.
  pool.parallel_for(size_t(n * s.n_head), [&](size_t b, size_t e, int) {
    std::vector<float> q16(static_cast<size_t>(hd)), acc(static_cast<size_t>(hd));
    for (size_t task = b; task < e; ++task) {
      const int64_t i = int64_t(task) / s.n_head, h = int64_t(task) % s.n_head, g = h / s.group;
      for (int64_t d = 0; d < hd; ++d) q16[size_t(d)] = round_half(q[i * s.ldq + h * hd + d]);
      float M = kNegInf, S = 0;
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t key = 0; key <= p0 + i; ++key) {
        const float* kr = k + key * s.ldkv + g * hd;
        const float* vr = v + key * s.ldkv + g * hd;
        double dot = 0;
        for (int64_t d = 0; d < hd; ++d) dot += double(kr[d] * q16[size_t(d)]);
        const float sc = float(dot) * scale;
        float ms = 1.0f, vs = 1.0f;
        if (sc > M) {
          ms = std::exp(M - sc);
          M = sc;
          for (auto& a : acc) a = round_half(a * ms);
        } else {
          vs = std::exp(sc - M);
        }
        for (int64_t d = 0; d < hd; ++d) acc[size_t(d)] = round_half(std::fma(vr[d], vs, acc[size_t(d)]));
        S = std::fma(S, ms, vs);
      }
      const float inv = S == 0.0f ? 0.0f : 1.0f / S;
      for (int64_t d = 0; d < hd; ++d) out[i * s.ldq + h * hd + d] = acc[size_t(d)] * inv;
    }
  });
}

// --- scalar references of the SIMD pieces ----------------------------------------------------

namespace detail::ref {
void key_chains(const float* q, const float* kt, int64_t hd, float* s) {
  for (int64_t j = 0; j < kTile; ++j) {
    float acc = 0.0f;
    for (int64_t d = 0; d < hd; ++d) acc = std::fma(q[d], kt[d * kTile + j], acc);
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
