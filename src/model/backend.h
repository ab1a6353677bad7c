// The arithmetic of the forward pass, chosen once when a Session is built: plain float (SGEMM,
// float attention and silu), or llama.cpp's CPU arithmetic to the bit (SessionOptions::
// ggml_rounding; kernels/ggml_exact.h). The session calls it with no per-call type or mode
// branches; each weight's kernels come from the kernel table (kernels/type_kernels.h).
#pragma once
#include <cstdint>
#include <memory>
#include <span>

#include "core/thread_pool.h"
#include "imq/model.h"
#include "kernels/matmul.h"
#include "model/ops.h"

namespace imq::model {

class Backend {
 public:
  struct Product {
    const kernels::WeightView* w;  // 2-D
    float* y;                      // [n, w->ne1]
  };
  virtual ~Backend() = default;

  // y_i = x·W_iᵀ for weights that share the input x [n, ne0]. expert_rows: x holds the rows
  // routed to one expert (ggml's mul_mat_id).
  virtual void matmul(std::span<const Product> products, const float* x, int64_t n,
                      bool expert_rows) = 0;
  // The MoE router's logits y [n, n_expert] (its last bits choose experts).
  virtual void router(const kernels::WeightView& w, const float* x, int64_t n, float* y) = 0;
  // gate[r] = act(gate[r]) · up[r] for `rows` rows of n_ff, act the model's FFN activation
  // (Config::ffn_act: silu or gelu_tanh).
  virtual void gated_act(float* gate, const float* up, int64_t rows, int64_t n_ff) = 0;
  // Rotates n rows of `heads` heads (row stride `stride`) at the positions the table holds.
  virtual void rope(const RopeTable& table, float* x, int64_t n, int64_t heads, int64_t stride) = 0;
  // The new cache rows k, v [n, n_kv] as the cache stores them (in place).
  virtual void store_kv(float* k, float* v, int64_t n, int64_t n_kv) = 0;
  // Causal attention of q [n, n_head·head_dim] at positions p0.. over one layer's cache,
  // scores scaled by Config::kq_scale; window > 0: each query sees only its last `window` keys.
  virtual void attention(const float* q, const float* k, const float* v, int64_t p0, int64_t n,
                         int64_t window, float* out) = 0;
  // Rows per forward pass when at most `rows` (≤ n_ubatch) are asked for: n_ubatch wherever
  // that gives the bits of `rows`-row passes (larger passes are faster).
  virtual int64_t micro_batch(int64_t rows, int64_t n_ubatch) const = 0;
};

// The backend SessionOptions ask for. max_row: the longest activation row (floats).
std::unique_ptr<Backend> make_backend(const Config& c, const SessionOptions& o, ThreadPool& pool,
                                      kernels::MatmulContext& ctx, int64_t max_row);

}  // namespace imq::model
