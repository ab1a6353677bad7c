// ggml's K-quant products with Q8_K activations (kernels/ggml_exact.h): Q4_K as AVX2's repacked
// gemm/gemv or vec_dot, Q6_K as vec_dot. Integer sums from SGEMM on integer-valued floats,
// the float steps after them in ggml's order.
#include <cblas.h>

#include "kernels/ggml_exact.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/fp16.h"
#include "imq/error.h"
#include "imq/ggml_types.h"
#include "kernels/act_codes.h"
#include "quant/kquants/kquants.h"

namespace imq::kernels::ggml {

// --- K-quant products (Q8_K activations) ------------------------------------------------

namespace {
bool q8_k_weight(GgmlType type) {
  return type == GgmlType::Q4_K || type == GgmlType::Q6_K;
}
}  // namespace

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

// Integer-valued floats make SGEMM exact: the products of pre-scaled codes and activation codes
// and their sums over the K = 64 (Q4_K, a pair of sub-blocks) or 32 (Q6_K, one lane) columns of
// one call stay below 2^24 (Q4_K: 64·945·127; Q6_K: 32·4096·127). So ggml's integer sums come
// out of OpenBLAS in any order, and only the float steps after them follow ggml's order.
constexpr int64_t kKRows = 128;  // weight rows per task

void sgemm_codes(const float* a, int64_t n, const float* w, int64_t rows, int64_t ld, int64_t k, float* c) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(n), int(rows), int(k), 1.0f, a, int(ld), w,
              int(ld), 0.0f, c, int(rows));
}

// A tile of weight rows decoded, with the per-thread buffers of its products (reused from tile
// to tile). ws: codes times their sub-block scale (Q4_K) or 16-scale (Q6_K, columns regrouped
// by lane); dw/dm: d and dmin, mc: Q4_K min codes, [super-block or sub-block][row].
struct KTile {
  int64_t rows = 0;
  std::vector<float> ws, dw, dm, mc, acc, accm, c;
  std::vector<double> S;
  void size(int64_t r, int64_t ne0, int64_t n, int64_t lanes) {
    const int64_t nb = ne0 / 256;
    rows = r;
    ws.resize(size_t(r * ne0)), dw.resize(size_t(r * nb)), dm.resize(size_t(r * nb));
    mc.resize(size_t(r * nb * 8)), c.resize(size_t(n * r)), S.resize(size_t(n * r));
    acc.assign(size_t(lanes * n * r), 0.0f), accm.assign(size_t(n * r), 0.0f);
  }
};

void decode_q4_k(const WeightView& w, int64_t r0, KTile& T) {
  const int64_t ne0 = w.ne0, nb = ne0 / 256, rows = T.rows;
  uint8_t q[256];
  for (int64_t r = 0; r < rows; ++r) {
    const auto* blocks = reinterpret_cast<const quant::BlockQ4K*>(w.row(r0 + r));
    for (int64_t b = 0; b < nb; ++b) {
      const quant::BlockQ4K& x = blocks[b];
      T.dw[size_t(b * rows + r)] = f16_to_f32(x.d), T.dm[size_t(b * rows + r)] = f16_to_f32(x.dmin);
      quant::q4_k_codes(x, q);
      float* o = T.ws.data() + r * ne0 + b * 256;
      for (int j = 0; j < 8; ++j) {
        uint8_t sc, m;
        quant::k4_scale_min(x.scales, j, &sc, &m);
        T.mc[size_t((b * 8 + j) * rows + r)] = float(m);
        for (int e = 32 * j; e < 32 * j + 32; ++e) o[e] = float(sc * q[e]);
      }
    }
  }
}

// The 32-element sums of the mins' partner: B_j = bsums[2j] + bsums[2j+1].
inline int32_t sub_block_sum(const int32_t* bsums, int j) { return bsums[2 * j] + bsums[2 * j + 1]; }

// Q4_K repacked 8x8 (AVX2, rows of W a multiple of 8): gemm for activation rows in whole groups
// of 4 (a fused step per pair of sub-blocks), gemv for the rest (one per super-block).
void q4_k_repacked(const WeightView& w, int64_t r0, const std::vector<float>& aq, const ActCodes& a,
                   int64_t n_gemm, float* y, KTile& T) {
  const int64_t ne0 = w.ne0, nb = ne0 / 256, n = a.n, rows = T.rows;
  auto &acc = T.acc, &accm = T.accm, &c = T.c;
  auto& S = T.S;
  for (int64_t b = 0; b < nb; ++b) {
    if (n_gemm < n) std::fill(S.begin() + n_gemm * rows, S.begin() + n * rows, 0.0);
    for (int64_t p = 0; p < 4; ++p) {
      const int64_t off = b * 256 + p * 64;
      sgemm_codes(aq.data() + off, n, T.ws.data() + off, rows, ne0, 64, c.data());
      const float* m0 = T.mc.data() + (b * 8 + 2 * p) * rows;
      const float* m1 = m0 + rows;
      for (int64_t t = 0; t < n_gemm; ++t) {
        const int32_t* bs = a.bsums.data() + (t * nb + b) * 16;
        detail::pair_update(c.data() + t * rows, T.dw.data() + b * rows, T.dm.data() + b * rows, m0, m1,
                            a.d[size_t(t * nb + b)], float(sub_block_sum(bs, 2 * int(p))),
                            float(sub_block_sum(bs, 2 * int(p) + 1)), rows, acc.data() + t * rows,
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
        for (int j = 0; j < 8; ++j) M += int64_t(T.mc[size_t((b * 8 + j) * rows + r)]) * sub_block_sum(bs, j);
        const size_t i = size_t(t * rows + r);
        acc[i] = std::fma(float(S[i]), T.dw[size_t(b * rows + r)] * dt, acc[i]);
        accm[i] = std::fma(float(M), T.dm[size_t(b * rows + r)] * dt, accm[i]);
      }
    }
  }
  for (int64_t t = 0; t < n; ++t)
    for (int64_t r = 0; r < rows; ++r) y[t * w.ne1 + r0 + r] = acc[size_t(t * rows + r)] - accm[size_t(t * rows + r)];
}

// ggml_vec_dot_q4_K_q8_K (AVX2; Q4_K rows not a multiple of 8): eight lanes of 4-element groups
// (Σ over the sub-blocks of scale · 4 products, integers), the mins in four lanes.
void q4_k_vec_dot(const WeightView& w, int64_t r0, const ActCodes& a, float* y, const KTile& T) {
  const int64_t ne0 = w.ne0, nb = ne0 / 256, rows = T.rows;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t t = 0; t < a.n; ++t) {
      float acc[8] = {}, am[4] = {};
      for (int64_t b = 0; b < nb; ++b) {
        const float* ws = T.ws.data() + r * ne0 + b * 256;
        const float* aq = a.q.data() + t * ne0 + b * 256;
        const float ad = a.d[size_t(t * nb + b)];
        const float d = ad * T.dw[size_t(b * rows + r)], dmin = (-ad) * T.dm[size_t(b * rows + r)];
        for (int L = 0; L < 8; ++L) {
          int64_t lane = 0;
          for (int j = 0; j < 8; ++j)
            for (int e = 32 * j + 4 * L; e < 32 * j + 4 * L + 4; ++e) lane += int64_t(ws[e]) * int64_t(aq[e]);
          acc[L] = std::fma(d, float(lane), acc[L]);
        }
        const int32_t* bs = a.bsums.data() + (t * nb + b) * 16;
        for (int k = 0; k < 4; ++k) {
          const float m0 = T.mc[size_t((b * 8 + 2 * k) * rows + r)], m1 = T.mc[size_t((b * 8 + 2 * k + 1) * rows + r)];
          am[k] = std::fma(dmin, float(int32_t(m0) * sub_block_sum(bs, 2 * k) + int32_t(m1) * sub_block_sum(bs, 2 * k + 1)), am[k]);
        }
      }
      y[t * w.ne1 + r0 + r] = detail::lanes_sum(acc) + ((am[0] + am[2]) + (am[1] + am[3]));
    }
}

// Q6_K: columns regrouped by ggml's lane (lane L of run r: elements 32r+4L..+3), each lane its
// own K = 32 product per super-block.
inline int64_t q6_lane_column(int64_t e) {  // element e of a super-block -> regrouped position
  const int64_t run = e / 32, L = (e % 32) / 4, k = e % 4;
  return L * 32 + run * 4 + k;
}

void q6_k_tile(const WeightView& w, int64_t r0, const std::vector<float>& aq6, const ActCodes& a, float* y,
               KTile& T) {
  const int64_t ne0 = w.ne0, nb = ne0 / 256, n = a.n, rows = T.rows;
  int8_t q[256];
  for (int64_t r = 0; r < rows; ++r) {
    const auto* blocks = reinterpret_cast<const quant::BlockQ6K*>(w.row(r0 + r));
    for (int64_t b = 0; b < nb; ++b) {
      const quant::BlockQ6K& x = blocks[b];
      T.dw[size_t(b * rows + r)] = f16_to_f32(x.d);
      quant::q6_k_codes(x, q);
      float* o = T.ws.data() + r * ne0 + b * 256;
      for (int64_t e = 0; e < 256; ++e) o[q6_lane_column(e)] = float(x.scales[e / 16] * q[e]);
    }
  }
  for (int64_t b = 0; b < nb; ++b)
    for (int64_t L = 0; L < 8; ++L) {
      const int64_t off = b * 256 + L * 32;
      sgemm_codes(aq6.data() + off, n, T.ws.data() + off, rows, ne0, 32, T.c.data());
      for (int64_t t = 0; t < n; ++t)
        detail::scaled_update(T.c.data() + t * rows, T.dw.data() + b * rows, a.d[size_t(t * nb + b)], rows,
                              T.acc.data() + (L * n + t) * rows);
    }
  for (int64_t t = 0; t < n; ++t)
    for (int64_t r = 0; r < rows; ++r) {
      float l[8];
      for (int L = 0; L < 8; ++L) l[L] = T.acc[size_t((L * n + t) * rows + r)];
      y[t * w.ne1 + r0 + r] = detail::lanes_sum(l);
    }
}

}  // namespace

void matmul_q8_k(const WeightView& w, const ActCodes& a, float* y, MatmulContext& ctx, bool gemv_only) {
  const int64_t ne0 = w.ne0, nb = ne0 / 256, n = a.n;
  if (a.ne0 != ne0) throw_error("{}: activations of {} columns for a weight of {}", w.name, a.ne0, ne0);
  if (!q8_k_weight(w.type)) throw_error("{}: no Q8_K product for this type", w.name);
  const bool q4 = w.type == GgmlType::Q4_K, repacked = q4 && w.ne1 % 8 == 0;
  std::vector<float> regrouped;  // Q6_K: activation codes regrouped by lane
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
      const int64_t r0 = task * kKRows;
      T.size(std::min(kKRows, w.ne1 - r0), ne0, n, q4 ? 1 : 8);
      if (!q4) {
        q6_k_tile(w, r0, regrouped, a, y, T);
        continue;
      }
      decode_q4_k(w, r0, T);
      if (repacked)
        q4_k_repacked(w, r0, a.q, a, n_gemm, y, T);
      else
        q4_k_vec_dot(w, r0, a, y, T);
    }
  });
}

}  // namespace imq::kernels::ggml
