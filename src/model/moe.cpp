// Mixtral-style MoE FFN (llama.cpp's build_moe_ffn for llama and qwen3moe): router logits = W_gate_inp·x,
// softmax over all experts, the top n_expert_used experts per token with their probabilities
// renormalized to sum 1, output = Σ_slots weight · down_e(silu(gate_e·x) * up_e·x).
#include <algorithm>
#include <numeric>

#include "model/session_impl.h"

namespace imq::model {

void Session::Impl::ffn_moe(const LayerWeights& L, int64_t n) {
  const int64_t d = c.n_embd, n_exp = c.n_expert, k = c.n_expert_used;
  MoeBuffers& M = moe;

  // Routing: router[t] = softmax(W_gate_inp · xn[t]); keep the k most probable experts.
  router(L.ffn_gate_inp, xn.data(), n, M.router.data());
  std::vector<int32_t>& order = M.order;
  for (int64_t t = 0; t < n; ++t) {
    float* p = M.router.data() + t * n_exp;
    softmax(p, n_exp);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return p[a] > p[b]; });
    float sum = 0;
    for (int64_t s = 0; s < k; ++s) sum += p[order[size_t(s)]];
    for (int64_t s = 0; s < k; ++s) {
      M.selected[size_t(t * k + s)] = order[size_t(s)];
      M.weight[size_t(t * k + s)] = p[order[size_t(s)]] / sum;
    }
  }

  // Each expert runs on exactly the rows routed to it.
  for (int32_t e = 0; e < int32_t(n_exp); ++e) {
    M.rows.clear();
    M.slots.clear();
    for (int64_t t = 0; t < n; ++t)
      for (int64_t s = 0; s < k; ++s)
        if (M.selected[size_t(t * k + s)] == e) {
          M.rows.push_back(int32_t(t));
          M.slots.push_back(int32_t(s));
        }
    const int64_t m = int64_t(M.rows.size());
    if (m == 0) continue;
    for (int64_t r = 0; r < m; ++r)
      std::copy_n(xn.data() + M.rows[size_t(r)] * d, d, M.x.data() + r * d);
    matmul({{L.ffn_gate_exps, gate.data()}, {L.ffn_up_exps, up.data()}}, M.x.data(), m, e);
    gate_act_up(m, c.n_ff_exp);
    matmul(L.ffn_down_exps, gate.data(), m, M.out.data(), e);
    for (int64_t r = 0; r < m; ++r) {
      const int64_t t = M.rows[size_t(r)], s = M.slots[size_t(r)];
      const float wt = M.weight[size_t(t * k + s)];
      float* dst = M.slot_out.data() + (t * k + s) * d;
      const float* src = M.out.data() + r * d;
      for (int64_t j = 0; j < d; ++j) dst[j] = src[j] * wt;
    }
  }

  // proj[t] = Σ_s slot_out[t, s], summed in slot order.
  for (int64_t t = 0; t < n; ++t) {
    float* dst = proj.data() + t * d;
    std::copy_n(M.slot_out.data() + t * k * d, d, dst);
    for (int64_t s = 1; s < k; ++s) {
      const float* src = M.slot_out.data() + (t * k + s) * d;
      for (int64_t j = 0; j < d; ++j) dst[j] += src[j];
    }
  }
}

}  // namespace imq::model
