// ggml's K-quant products with Q8_K activations (kernels/ggml_exact.h): Q4_K as AVX2's repacked
// gemm/gemv or vec_dot, Q6_K as vec_dot. Integer sums from SGEMM on integer-valued floats,
// the float steps after them in ggml's order.
#include <cblas.h>

#include "kernels/ggml_exact.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/fp16.h"
#include "imq/error.h"
#include "imq/ggml_types.h"
#include "kernels/act_codes.h"
#include "quant/kquants/kquants.h"

namespace imq::kernels::ggml {

// --- K-quant products (Q8_K activations) ------------------------------------------------

bool exact_q8_k_weight(uint32_t type) {
  return type == uint32_t(GgmlType::Q4_K) || type == uint32_t(GgmlType::Q6_K);
}

void quantize_q8_k(const float* x, int64_t n, int64_t ne0, ActCodes& a, ThreadPool& pool) {
  if (ne0 % 256) throw_error("Q8_K activations need rows of a multiple of 256, got {}", ne0);
  const int64_t nb = ne0 / 256;
  a.n = n, a.ne0 = ne0;
  a.q.resize(size_t(n * ne0)), a.d.resize(size_t(n * nb)), a.bsums.resize(size_t(n * nb * 16));
  pool.parallel_for(size_t(n * nb), [&](size_t b0, size_t b1, int) {
    for (int64_t b = int64_t(b0); b < int64_t(b1); ++b) {
      float* q = a.q.data() + b * 256;
      a.d[size_t(b)] = q8_k_codes(x + b * 256, q);
      for (int g = 0; g < 16; ++g) {
        int32_t s = 0;
        for (int j = 0; j < 16; ++j) s += int32_t(q[16 * g + j]);
        a.bsums[size_t(b * 16 + g)] = s;
      }
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
  return detail::lanes_sum(acc) + ((am[0] + am[2]) + (am[1] + am[3]));
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
               const ActCodes& a, int64_t n, int64_t n_gemm, float* y, KTile& T) {
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
               const ActCodes& a, int64_t n, float* y, KTile& T) {
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
      y[t * w.ne1 + r0 + r] = detail::lanes_sum(l);
    }
}

}  // namespace

void matmul_q8_k(const WeightView& w, const ActCodes& a, float* y, MatmulContext& ctx, bool gemv_only) {
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

}  // namespace imq::kernels::ggml
