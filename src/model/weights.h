// The model's weights as named, non-owning views into the mapped GGUF file (llama layout and
// the tensors other architectures add).
// Shapes are in ggml order: ne0 = input features (columns), ne1 = output features (rows).
#pragma once
#include <optional>
#include <vector>

#include "imq/model.h"
#include "kernels/matmul.h"

namespace imq::model {

using kernels::WeightView;

// A 1-D float vector (norm weights, biases), converted to F32 at load when stored otherwise.
struct VectorView {
  std::string_view name;
  const float* data = nullptr;
  int64_t n = 0;
};

struct LayerWeights {
  VectorView attn_norm;        // [n_embd]
  WeightView wq;               // attn_q      [n_embd, n_head*head_dim]
  WeightView wk;               // attn_k      [n_embd, n_head_kv*head_dim]
  WeightView wv;               // attn_v      [n_embd, n_head_kv*head_dim]
  WeightView wo;               // attn_output [n_head*head_dim, n_embd]
  std::optional<VectorView> bq, bk, bv, bo;  // optional attention biases (qwen2: q, k, v)
  VectorView attn_q_norm;      // [head_dim] per-head RMSNorm of Q (Config::qk_norm)
  VectorView attn_k_norm;      // [head_dim] per-head RMSNorm of K
  VectorView attn_post_norm;   // [n_embd] post_attention_norm (Config::post_norms)
  VectorView ffn_norm;         // [n_embd]
  VectorView ffn_post_norm;    // [n_embd] post_ffw_norm (Config::post_norms)
  // dense FFN
  WeightView ffn_gate;         // [n_embd, n_ff]
  WeightView ffn_up;           // [n_embd, n_ff]
  WeightView ffn_down;         // [n_ff, n_embd]
  // MoE FFN
  WeightView ffn_gate_inp;     // router [n_embd, n_expert]
  WeightView ffn_gate_exps;    // [n_embd, n_ff_exp, n_expert]
  WeightView ffn_up_exps;      // [n_embd, n_ff_exp, n_expert]
  WeightView ffn_down_exps;    // [n_ff_exp, n_embd, n_expert]
};

}  // namespace imq::model

namespace imq::model {

struct Model::Weights {
  WeightView token_embd;       // [n_embd, n_vocab]
  VectorView output_norm;      // [n_embd]
  WeightView output;           // [n_embd, n_vocab] (token_embd when tied)
  std::optional<VectorView> rope_freqs;  // [n_rot/2] frequency factors
  std::vector<LayerWeights> layers;
  std::vector<std::vector<float>> converted;  // F32 copies of non-F32 1-D tensors
};

// Builds the views for a validated config; throws imq::Error naming the tensor on a missing
// tensor, a wrong shape or an unreadable type.
Model::Weights load_weights(const gguf::File& file, const Config& config);

// Hyperparameters from the <arch>.* keys (and the token_embd shape).
Config load_config(const gguf::File& file);

}  // namespace imq::model
