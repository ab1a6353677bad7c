// ggml's two CPU flash-attention paths (kernels/ggml_exact.h).
#include "kernels/ggml_exact.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/fp16.h"

namespace imq::kernels::ggml {

namespace {
constexpr int64_t kTile = 64;  // ggml's query and key tile (GGML_FA_TILE_Q / _KV)
constexpr float kNegInf = -std::numeric_limits<float>::infinity();
}  // namespace

bool attention_tiled_path(int64_t n_rows, int64_t hd) { return n_rows >= kTile && hd % 8 == 0; }

void attention(const AttentionShape& s, const float* q, const float* k, const float* v, int64_t p0,
               int64_t n, int64_t window, float* out, ThreadPool& pool) {
  const int64_t hd = s.hd;
  const float scale = s.scale;
  // The first key a query at position P sees (ggml masks the others with -inf and skips them).
  auto first_key = [window](int64_t P) { return window > 0 ? std::max<int64_t>(0, P - window + 1) : 0; };
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
        for (int64_t t0 = first_key(p0 + i0) / kTile * kTile; t0 <= last_key; t0 += kTile) {
          const int64_t nk = std::min(kTile, last_key + 1 - t0);
          for (int64_t d = 0; d < hd; ++d)
            for (int64_t j = 0; j < kTile; ++j)
              kt[size_t(d * kTile + j)] = j < nk ? k[(t0 + j) * s.ldkv + g * hd + d] : 0.0f;
          for (int64_t i = 0; i < m; ++i) {
            const int64_t P = p0 + i0 + i;  // keys first_key(P)..P are visible
            const int64_t lo = first_key(P) - t0;
            if (t0 > P || lo >= kTile) continue;  // every score of this tile is masked
            const int64_t valid = std::min(kTile, P + 1 - t0);
            detail::key_chains(q + (i0 + i) * s.ldq + h * hd, kt.data(), hd, sc.data());
            float tmax = kNegInf;
            for (int64_t j = 0; j < kTile; ++j) {
              sc[size_t(j)] = j >= lo && j < valid ? sc[size_t(j)] * scale : kNegInf;
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
            v_expf_row(sc.data(), kTile, sc.data(), s.cpu);
            const double sum = softmax_sum(sc.data(), kTile, s.cpu);
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
      for (int64_t d = 0; d < hd; ++d) q16[size_t(d)] = f16_round(q[i * s.ldq + h * hd + d]);
      float M = kNegInf, S = 0;
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t key = first_key(p0 + i); key <= p0 + i; ++key) {
        const float* kr = k + key * s.ldkv + g * hd;
        const float* vr = v + key * s.ldkv + g * hd;
        double dot = 0;
        for (int64_t d = 0; d < hd; ++d) dot += double(kr[d] * q16[size_t(d)]);
        const float sc = float(dot) * scale;
        float ms = 1.0f, vs = 1.0f;
        if (sc > M) {
          ms = std::exp(M - sc);
          M = sc;
          for (auto& a : acc) a = f16_round(a * ms);
        } else {
          vs = std::exp(sc - M);
        }
        for (int64_t d = 0; d < hd; ++d) acc[size_t(d)] = f16_round(std::fma(vr[d], vs, acc[size_t(d)]));
        S = std::fma(S, ms, vs);
      }
      const float inv = S == 0.0f ? 0.0f : 1.0f / S;
      for (int64_t d = 0; d < hd; ++d) out[i * s.ldq + h * hd + d] = acc[size_t(d)] * inv;
    }
  });
}

}  // namespace imq::kernels::ggml
