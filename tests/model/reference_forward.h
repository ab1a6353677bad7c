// A deliberately naive forward pass in double precision, written straight from the model
// definitions (llama and the differences of qwen2/qwen3/qwen3moe/gemma3 as their Hugging Face
// modelling files state them; no cache, no batching, no threads): the reference the engine is
// checked against.
#pragma once
#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>
#include <vector>

#include "imq/model.h"
#include "model/weights.h"

namespace imq::test {

using Mat = std::vector<std::vector<double>>;  // [rows][cols]

inline std::vector<double> row_of(const kernels::WeightView& w, int64_t r) {
  std::vector<float> f(size_t(w.ne0));
  kernels::dequantize_rows(w, r, r + 1, f.data());
  return {f.begin(), f.end()};
}

// y = W x for one vector x (length ne0).
inline std::vector<double> matvec(const kernels::WeightView& w, const std::vector<double>& x) {
  std::vector<double> y(size_t(w.ne1));
  for (int64_t r = 0; r < w.ne1; ++r) {
    const auto row = row_of(w, r);
    y[size_t(r)] = std::inner_product(row.begin(), row.end(), x.begin(), 0.0);
  }
  return y;
}

inline std::vector<double> rmsnorm(const std::vector<double>& x, const model::VectorView& w, double eps) {
  double ss = 0;
  for (double v : x) ss += v * v;
  const double s = 1 / std::sqrt(ss / double(x.size()) + eps);
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * s * w.data[i];
  return y;
}

// RMSNorm of each head_dim slice of v (qwen3/gemma3's q_norm, k_norm).
inline void head_norm(std::vector<double>& v, const model::VectorView& w, const model::Config& c) {
  for (size_t h = 0; h < v.size() / size_t(c.head_dim); ++h) {
    const auto first = v.begin() + std::ptrdiff_t(h * size_t(c.head_dim));
    const auto y = rmsnorm({first, first + c.head_dim}, w, c.rms_eps);
    std::copy(y.begin(), y.end(), first);
  }
}

inline void add(std::vector<double>& y, const std::optional<model::VectorView>& b) {
  if (b)
    for (size_t i = 0; i < y.size(); ++i) y[i] += b->data[i];
}

inline void rope(std::vector<double>& v, int64_t n_heads, const model::Config& c, int64_t pos,
                 double base) {
  const int64_t half = c.n_rot / 2;
  for (int64_t h = 0; h < n_heads; ++h)
    for (int64_t i = 0; i < half; ++i) {
      const double theta = double(pos) * std::pow(base, -2.0 * double(i) / double(c.n_rot));
      const bool neox = c.rope_type == model::RopeType::Neox;
      const size_t a = size_t(h * c.head_dim + (neox ? i : 2 * i));
      const size_t b = size_t(h * c.head_dim + (neox ? i + half : 2 * i + 1));
      const double x0 = v[a], x1 = v[b];
      v[a] = x0 * std::cos(theta) - x1 * std::sin(theta);
      v[b] = x0 * std::sin(theta) + x1 * std::cos(theta);
    }
}

// down(act(gate·x) * up·x), act silu or gemma's gelu (tanh approximation).
inline std::vector<double> gated_ffn(const model::Config& c, const kernels::WeightView& g,
                                     const kernels::WeightView& u, const kernels::WeightView& d,
                                     const std::vector<double>& x) {
  auto a = matvec(g, x), b = matvec(u, x);
  for (size_t i = 0; i < a.size(); ++i) {
    const double z = a[i];
    a[i] = c.ffn_act == model::FfnActivation::GeluTanh
               ? 0.5 * z * (1 + std::tanh(std::sqrt(2 / M_PI) * (z + 0.044715 * z * z * z)))
               : z / (1 + std::exp(-z));
    a[i] *= b[i];
  }
  return matvec(d, a);
}

// Logits [T][n_vocab] for tokens at positions 0..T-1.
inline Mat reference_logits(const model::Model& m, const std::vector<int32_t>& tokens) {
  const auto& c = m.config();
  const auto& W = m.weights();
  const size_t T = tokens.size();
  Mat x(T);
  for (size_t t = 0; t < T; ++t) {
    x[t] = row_of(W.token_embd, tokens[t]);
    for (double& e : x[t]) e *= c.embd_scale;  // gemma: √n_embd
  }
  // What a block adds to the residual stream: gemma3 normalizes it first.
  auto residual = [&](std::vector<double>& xt, std::vector<double> y, const model::VectorView& post) {
    if (c.post_norms) y = rmsnorm(y, post, c.rms_eps);
    for (size_t i = 0; i < y.size(); ++i) xt[i] += y[i];
  };
  for (int64_t il = 0; il < c.n_layer; ++il) {
    const auto& L = W.layers[size_t(il)];
    // gemma3: sliding-window layers see the last n_swa keys and rotate with their own base.
    const bool swa = c.is_swa(il);
    const double base = swa ? c.rope_freq_base_swa : c.rope_freq_base;
    Mat q(T), k(T), v(T);
    for (size_t t = 0; t < T; ++t) {
      const auto xn = rmsnorm(x[t], L.attn_norm, c.rms_eps);
      q[t] = matvec(L.wq, xn), k[t] = matvec(L.wk, xn), v[t] = matvec(L.wv, xn);
      add(q[t], L.bq), add(k[t], L.bk), add(v[t], L.bv);
      if (c.qk_norm) head_norm(q[t], L.attn_q_norm, c), head_norm(k[t], L.attn_k_norm, c);
      rope(q[t], c.n_head, c, int64_t(t), base);
      rope(k[t], c.n_head_kv, c, int64_t(t), base);
    }
    for (size_t t = 0; t < T; ++t) {
      std::vector<double> att(size_t(c.n_head * c.head_dim));
      for (int64_t h = 0; h < c.n_head; ++h) {
        const int64_t g = h / (c.n_head / c.n_head_kv);
        const size_t first = swa && t + 1 > size_t(c.n_swa) ? t + 1 - size_t(c.n_swa) : 0;
        std::vector<double> s(t + 1, -INFINITY);
        for (size_t j = first; j <= t; ++j) {
          double d = 0;
          for (int64_t i = 0; i < c.head_dim; ++i)
            d += q[t][size_t(h * c.head_dim + i)] * k[j][size_t(g * c.head_dim + i)];
          s[j] = d * double(c.q_scale) * double(c.kq_scale);  // 1/√head_dim either way
        }
        const double mx = *std::max_element(s.begin(), s.end());
        double sum = 0;
        for (double& e : s) sum += (e = std::exp(e - mx));
        for (size_t j = first; j <= t; ++j)
          for (int64_t i = 0; i < c.head_dim; ++i)
            att[size_t(h * c.head_dim + i)] += s[j] / sum * v[j][size_t(g * c.head_dim + i)];
      }
      auto o = matvec(L.wo, att);
      add(o, L.bo);
      residual(x[t], o, L.attn_post_norm);
    }
    for (size_t t = 0; t < T; ++t) {
      const auto xn = rmsnorm(x[t], L.ffn_norm, c.rms_eps);
      std::vector<double> f(size_t(c.n_embd));
      if (!c.is_moe()) {
        f = gated_ffn(c, L.ffn_gate, L.ffn_up, L.ffn_down, xn);
      } else {
        auto p = matvec(L.ffn_gate_inp, xn);
        const double mx = *std::max_element(p.begin(), p.end());
        double sum = 0;
        for (double& e : p) sum += (e = std::exp(e - mx));
        for (double& e : p) e /= sum;
        std::vector<int> order(p.size());
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return p[size_t(a)] > p[size_t(b)]; });
        double wsum = 0;
        for (int64_t s = 0; s < c.n_expert_used; ++s) wsum += p[size_t(order[size_t(s)])];
        for (int64_t s = 0; s < c.n_expert_used; ++s) {
          const int e = order[size_t(s)];
          const auto y = gated_ffn(c, L.ffn_gate_exps.expert(e), L.ffn_up_exps.expert(e),
                                   L.ffn_down_exps.expert(e), xn);
          for (size_t i = 0; i < f.size(); ++i) f[i] += p[size_t(e)] / wsum * y[i];
        }
      }
      residual(x[t], f, L.ffn_post_norm);
    }
  }
  Mat logits(T);
  for (size_t t = 0; t < T; ++t) logits[t] = matvec(W.output, rmsnorm(x[t], W.output_norm, c.rms_eps));
  return logits;
}

}  // namespace imq::test
