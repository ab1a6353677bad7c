// Session internals: the KV cache and activation buffers (allocated once), the thread pool
// and the matmul hook. Shapes in comments use nu = n_ubatch (rows of one micro-batch).
#pragma once
#include <initializer_list>
#include <memory>
#include <optional>
#include <vector>

#include "core/thread_pool.h"
#include "imq/model.h"
#include "imq/observer.h"
#include "kernels/matmul.h"
#include "model/backend.h"
#include "model/ops.h"
#include "model/weights.h"

namespace imq::model {

struct KvCache {
  std::vector<float> k, v;  // per layer [n_ctx, n_head_kv*head_dim], layers back to back
  int64_t n_ctx = 0, row = 0;
  float* k_layer(int64_t il) { return k.data() + il * n_ctx * row; }
  float* v_layer(int64_t il) { return v.data() + il * n_ctx * row; }
};

struct MoeBuffers {
  std::vector<float> router;      // [nu, n_expert] logits, then probabilities
  std::vector<int32_t> order;     // [n_expert] experts by probability
  std::vector<int32_t> selected;  // [nu, n_expert_used] expert ids, best first
  std::vector<float> weight;      // [nu, n_expert_used] renormalized probabilities
  std::vector<int32_t> rows;      // token rows routed to the current expert
  std::vector<int32_t> slots;     // their selection slot
  std::vector<float> x;           // [nu, n_embd] gathered inputs of one expert
  std::vector<float> out;         // [nu, n_embd] one expert's outputs
  std::vector<float> slot_out;    // [nu, n_expert_used, n_embd] weighted expert outputs
};

struct Session::Impl {
  Impl(const Model& m, const SessionOptions& o);

  const Model& model;
  const Config& c;
  const Model::Weights& w;
  SessionOptions opt;
  ThreadPool pool;
  kernels::MatmulContext mm_ctx;
  std::unique_ptr<Backend> backend;  // chosen once, from opt.ggml_rounding
  MatmulObserver* observer = nullptr;
  std::string_view stop_at;  // forward_layer: stop once the observer has seen this weight
  struct Stop {};            // thrown by matmul to end forward_layer there
  KvCache kv;
  int64_t n_past = 0;
  int64_t micro_batch = 0;  // rows per forward pass (set_micro_batch; n_ubatch by default)
  RopeTable rope;                      // rotations of the global layers (rope_freq_base)
  std::optional<RopeTable> rope_swa;   // of the sliding-window layers (rope_freq_base_swa)
  const RopeTable& rope_of(int64_t il) const { return c.is_swa(il) ? *rope_swa : rope; }
  void compute_rope(int64_t p0, int64_t n) {
    rope.compute(p0, n);
    if (rope_swa) rope_swa->compute(p0, n);
  }

  std::vector<float> x;       // [nu, n_embd] residual stream
  std::vector<float> xn;      // [nu, n_embd] normed input of a block
  std::vector<float> q;       // [nu, n_head*head_dim]
  std::vector<float> attn;    // [nu, n_head*head_dim] attention output (before wo)
  std::vector<float> proj;    // [nu, n_embd] block output (wo or FFN down)
  std::vector<float> gate;    // [nu, max(n_ff, n_ff_exp)]
  std::vector<float> up;      // [nu, max(n_ff, n_ff_exp)]
  MoeBuffers moe;

  // y_i = x·W_iᵀ for weights that share the input x (q/k/v, gate/up), the observer told of
  // each first (expert >= 0: rows routed to that expert), then the backend's products.
  struct Product {
    const WeightView& w;
    float* y;
  };
  void matmul(std::initializer_list<Product> products, const float* x, int64_t n, int32_t expert = -1);
  void matmul(const WeightView& w, const float* x, int64_t n, float* y, int32_t expert = -1) {
    matmul({Product{w, y}}, x, n, expert);
  }
  // The MoE router's logits (observed like any product).
  void router(const WeightView& w, const float* x, int64_t n, float* y);
  // One micro-batch: tokens at positions n_past..; logits of rows [out_from, n) into `logits`.
  void forward(const int32_t* tokens, int64_t n, int64_t out_from, float* logits);

  // The block, in steps (each architecture's differences are Config fields):
  void attention_block(const LayerWeights& L, int64_t il, int64_t n);  // x += attention(norm(x))
  void attn_output(const LayerWeights& L, int64_t n);  // x += post_norm(wo · attn (+ bo))
  void ffn_block(const LayerWeights& L, int64_t n);    // x += post_norm(ffn(norm(x)))
  // x += proj, after the block's post-norm where the architecture has one (gemma3).
  void add_residual(const VectorView& post_norm, int64_t n);
  // gate[r] = act(gate[r]) · up[r] for `rows` rows of `width` (the backend's activation).
  void gate_act_up(int64_t rows, int64_t width);
  void ffn_dense(const LayerWeights& L, int64_t n);
  void ffn_moe(const LayerWeights& L, int64_t n);
};

}  // namespace imq::model
