// Hyperparameters of a llama-family model from its GGUF keys (llama.*), validated.
#include <cmath>

#include "imq/gguf.h"
#include "model/weights.h"

namespace imq::model {
namespace {

int64_t positive(const gguf::File& f, std::string_view key, int64_t v) {
  if (v <= 0) throw_error("{}: key {}: expected a positive value, found {}", f.path(), key, v);
  return v;
}

}  // namespace

Config load_config(const gguf::File& f) {
  const std::string arch = f.get_string("general.architecture");
  if (arch != "llama")
    throw_error("{}: unsupported architecture '{}' (imq runs llama-family models: 'llama')", f.path(),
                arch);
  Config c;
  c.n_embd = positive(f, "llama.embedding_length", f.get_int("llama.embedding_length"));
  c.n_layer = positive(f, "llama.block_count", f.get_int("llama.block_count"));
  c.n_ff = positive(f, "llama.feed_forward_length", f.get_int("llama.feed_forward_length"));
  c.n_head = positive(f, "llama.attention.head_count", f.get_int("llama.attention.head_count"));
  c.n_head_kv = positive(f, "llama.attention.head_count_kv",
                         f.find_int("llama.attention.head_count_kv").value_or(c.n_head));
  c.n_ctx_train = f.find_int("llama.context_length").value_or(0);
  if (c.n_head % c.n_head_kv != 0)
    throw_error("{}: llama.attention.head_count {} is not a multiple of head_count_kv {}", f.path(),
                c.n_head, c.n_head_kv);
  if (auto kl = f.find_int("llama.attention.key_length")) {
    c.head_dim = positive(f, "llama.attention.key_length", *kl);
    const int64_t vl = f.find_int("llama.attention.value_length").value_or(c.head_dim);
    if (vl != c.head_dim)
      throw_error("{}: llama.attention.value_length {} differs from key_length {} (unsupported)",
                  f.path(), vl, c.head_dim);
  } else {
    if (c.n_embd % c.n_head != 0)
      throw_error("{}: llama.embedding_length {} is not a multiple of head_count {}", f.path(),
                  c.n_embd, c.n_head);
    c.head_dim = c.n_embd / c.n_head;
  }
  c.n_rot = f.find_int("llama.rope.dimension_count").value_or(c.head_dim);
  if (c.n_rot <= 0 || c.n_rot > c.head_dim || c.n_rot % 2 != 0)
    throw_error("{}: llama.rope.dimension_count {} must be even and in 2..{} (head dim)", f.path(),
                c.n_rot, c.head_dim);
  c.rms_eps = float(f.get("llama.attention.layer_norm_rms_epsilon").as_double());
  if (!(c.rms_eps > 0))
    throw_error("{}: llama.attention.layer_norm_rms_epsilon must be positive", f.path());
  c.rope_freq_base = float(f.find_float("llama.rope.freq_base").value_or(10000.0));

  // RoPE scaling: linear (positions divided by the factor) or YaRN.
  std::string scaling = "linear";
  if (const auto* v = f.find("llama.rope.scaling.type")) scaling = v->as_string();
  double factor = 0;
  if (auto x = f.find_float("llama.rope.scaling.factor")) factor = *x;
  else if (auto y = f.find_float("llama.rope.scale_linear")) factor = *y;
  if (scaling == "none") factor = 0;
  if (scaling != "none" && scaling != "linear" && scaling != "yarn")
    throw_error("{}: llama.rope.scaling.type '{}' is not supported (none, linear, yarn)", f.path(),
                scaling);
  c.rope_freq_scale = factor > 0 ? float(1.0 / factor) : 1.0f;
  c.rope_yarn = scaling == "yarn";
  c.rope_yarn_orig_ctx =
      f.find_int("llama.rope.scaling.original_context_length").value_or(c.n_ctx_train);
  if (const auto* v = f.find("imq.rope_type")) {  // imq synth only: llama itself is "normal"
    const std::string& t = v->as_string();
    if (t == "neox") c.rope_type = RopeType::Neox;
    else if (t != "normal")
      throw_error("{}: imq.rope_type '{}' is not 'normal' or 'neox'", f.path(), t);
  }

  c.n_expert = f.find_int("llama.expert_count").value_or(0);
  c.n_expert_used = f.find_int("llama.expert_used_count").value_or(0);
  if (c.n_expert < 0 || c.n_expert_used < 0 || c.n_expert_used > c.n_expert ||
      (c.n_expert > 0 && c.n_expert_used == 0))
    throw_error("{}: llama.expert_used_count {} must be in 1..expert_count {}", f.path(),
                c.n_expert_used, c.n_expert);

  const auto& embd = f.tensor("token_embd.weight");
  c.n_vocab = embd.ne[1];
  if (auto vs = f.find_int("llama.vocab_size"); vs && *vs != c.n_vocab)
    throw_error("{}: llama.vocab_size {} differs from token_embd.weight's {} rows", f.path(), *vs,
                c.n_vocab);
  c.tied_output = f.find_tensor("output.weight") == nullptr;
  return c;
}

}  // namespace imq::model
