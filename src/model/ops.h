// The non-matmul steps of the forward pass, on row-major float buffers. Each op follows
// ggml's arithmetic (sums in double where ggml uses ggml_float, exp in float).
#pragma once
#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "imq/model.h"

namespace imq::model {

// out[t] = x[t] / sqrt(mean(x[t]²) + eps) * w, for n rows of d. out may alias x.
void rmsnorm(const float* x, const float* w, int64_t n, int64_t d, float eps, float* out);

// out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + e^-g). out may alias gate.
void swiglu(const float* gate, const float* up, int64_t n, float* out);

// out[i] = gelu_tanh(gate[i]) * up[i] (the tanh approximation, in float). out may alias gate.
void geglu(const float* gate, const float* up, int64_t n, float* out);

// In-place softmax of one row of n values (max-subtracted SIMD exp, sum in double).
void softmax(float* x, int64_t n);

// cos/sin of the rotary angles for a run of positions: [n_pos, n_rot/2] each.
class RopeTable {
 public:
  // freq_base: c.rope_freq_base, or c.rope_freq_base_swa for sliding-window layers.
  RopeTable(const Config& c, float freq_base, const float* freq_factors, int64_t max_positions);
  // Fills the table for positions p0 .. p0+n-1.
  void compute(int64_t p0, int64_t n);
  // Rotates n rows of `n_heads` heads of head_dim values each (row stride `stride` floats)
  // whose positions are the ones last computed.
  // fused: x0·cos − x1·sin as fma(x0, cos, −(x1·sin)) and x0·sin + x1·cos as
  // fma(x0, sin, x1·cos), as GCC contracts ggml's rope (llama.cpp's CPU backend).
  void apply(float* x, int64_t n, int64_t n_heads, int64_t stride, bool fused = false) const;

 private:
  const Config& c_;
  const float* freq_factors_;  // [n_rot/2] or null
  float theta_scale_;
  float corr_dims_[2] = {0, 0};
  float ext_factor_ = 0, mscale_ = 1;
  std::vector<float> cos_, sin_;  // [max_positions, n_rot/2]
};

// Causal multi-head attention with grouped K/V heads over a KV cache:
//   q     [n, n_head*head_dim] (row stride n_head*head_dim), positions p0 .. p0+n-1
//   k, v  cache rows 0 .. p0+n-1, [pos, n_head_kv*head_dim]
//   out   [n, n_head*head_dim]
// Query i attends keys 0 .. p0+i (window > 0: only the last `window` of them) with
// softmax(c.kq_scale · q·k).
// scratch: per thread attention_scratch_floats(n_ctx) floats.
int64_t attention_scratch_floats(int64_t n_ctx);
void attention(const Config& c, const float* q, const float* k, const float* v, int64_t p0,
               int64_t n, int64_t window, float* out, ThreadPool& pool, std::vector<std::vector<float>>& scratch);

}  // namespace imq::model
