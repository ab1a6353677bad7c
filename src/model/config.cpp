// Hyperparameters of a model from its GGUF keys (<arch>.*), validated, and the table of the
// architectures imq runs: each one is llama's block with the differences its row names.
#include <cmath>

#include "imq/gguf.h"
#include "model/weights.h"

namespace imq::model {
namespace {

// How an architecture differs from llama (llama.cpp's builders for these architectures).
// Adding one: a row here, its tensors in weights.cpp if it has new ones, and a step in
// session.cpp only for an operation no row has yet.
struct Arch {
  std::string_view name;
  RopeType rope = RopeType::Normal;  // llama.cpp's rope type for the architecture
  bool qk_norm = false;              // attn_q_norm / attn_k_norm per head before RoPE
  bool post_norms = false;           // post_attention_norm / post_ffw_norm
  bool embd_scale = false;           // embeddings × √n_embd
  bool q_scaled = false;             // Q × 1/√head_dim after RoPE, attention unscaled
  bool swa = false;                  // sliding-window layers (<arch>.attention.sliding_window)
  FfnActivation act = FfnActivation::Silu;
};

constexpr Arch kArchs[] = {
    {.name = "llama"},
    {.name = "qwen2", .rope = RopeType::Neox},  // q/k/v biases: optional tensors of every row
    {.name = "qwen3", .rope = RopeType::Neox, .qk_norm = true},
    {.name = "qwen3moe", .rope = RopeType::Neox, .qk_norm = true},  // softmax top-k renormalized
    {.name = "gemma3", .rope = RopeType::Neox, .qk_norm = true, .post_norms = true,
     .embd_scale = true, .q_scaled = true, .swa = true, .act = FfnActivation::GeluTanh},
};

// llama.cpp's default for gemma3 files without a pattern key: every 6th layer is global.
constexpr int64_t kGemma3SwaPeriod = 6;

const Arch& find_arch(const gguf::File& f, const std::string& name) {
  std::string names;
  for (const Arch& a : kArchs) {
    if (a.name == name) return a;
    names += fmt::format("{}{}", names.empty() ? "" : ", ", a.name);
  }
  throw_error("{}: unsupported architecture '{}' (imq runs: {})", f.path(), name, names);
}

int64_t positive(const gguf::File& f, const std::string& key, int64_t v) {
  if (v <= 0) throw_error("{}: key {}: expected a positive value, found {}", f.path(), key, v);
  return v;
}

}  // namespace

Config load_config(const gguf::File& f) {
  const std::string arch = f.get_string("general.architecture");
  const Arch& A = find_arch(f, arch);
  const std::string p = arch + ".";  // every hyperparameter key starts with the architecture
  auto key = [&](std::string_view k) { return p + std::string(k); };
  auto required = [&](std::string_view k) {
    const std::string name = key(k);
    if (!f.find(name))
      throw_error("{}: architecture '{}' needs key {}, which the file lacks", f.path(), arch, name);
    return positive(f, name, f.get_int(name));
  };
  Config c;
  c.arch = arch;
  c.n_embd = required("embedding_length");
  c.n_layer = required("block_count");
  c.n_ff = required("feed_forward_length");
  c.n_head = required("attention.head_count");
  c.n_head_kv = positive(f, key("attention.head_count_kv"),
                         f.find_int(key("attention.head_count_kv")).value_or(c.n_head));
  c.n_ctx_train = f.find_int(key("context_length")).value_or(0);
  if (c.n_head % c.n_head_kv != 0)
    throw_error("{}: {} {} is not a multiple of head_count_kv {}", f.path(),
                key("attention.head_count"), c.n_head, c.n_head_kv);
  if (auto kl = f.find_int(key("attention.key_length"))) {
    c.head_dim = positive(f, key("attention.key_length"), *kl);
    const int64_t vl = f.find_int(key("attention.value_length")).value_or(c.head_dim);
    if (vl != c.head_dim)
      throw_error("{}: {} {} differs from key_length {} (unsupported)", f.path(),
                  key("attention.value_length"), vl, c.head_dim);
  } else {
    if (c.n_embd % c.n_head != 0)
      throw_error("{}: {} {} is not a multiple of head_count {}", f.path(), key("embedding_length"),
                  c.n_embd, c.n_head);
    c.head_dim = c.n_embd / c.n_head;
  }
  c.n_rot = f.find_int(key("rope.dimension_count")).value_or(c.head_dim);
  if (c.n_rot <= 0 || c.n_rot > c.head_dim || c.n_rot % 2 != 0)
    throw_error("{}: {} {} must be even and in 2..{} (head dim)", f.path(),
                key("rope.dimension_count"), c.n_rot, c.head_dim);
  if (!f.find(key("attention.layer_norm_rms_epsilon")))
    throw_error("{}: architecture '{}' needs key {}, which the file lacks", f.path(), arch,
                key("attention.layer_norm_rms_epsilon"));
  c.rms_eps = float(f.get(key("attention.layer_norm_rms_epsilon")).as_double());
  if (!(c.rms_eps > 0))
    throw_error("{}: {} must be positive", f.path(), key("attention.layer_norm_rms_epsilon"));
  c.rope_freq_base = float(f.find_float(key("rope.freq_base")).value_or(10000.0));

  // RoPE scaling: linear (positions divided by the factor) or YaRN.
  std::string scaling = "linear";
  if (const auto* v = f.find(key("rope.scaling.type"))) scaling = v->as_string();
  double factor = 0;
  if (auto x = f.find_float(key("rope.scaling.factor"))) factor = *x;
  else if (auto y = f.find_float(key("rope.scale_linear"))) factor = *y;
  if (scaling == "none") factor = 0;
  if (scaling != "none" && scaling != "linear" && scaling != "yarn")
    throw_error("{}: {} '{}' is not supported (none, linear, yarn)", f.path(),
                key("rope.scaling.type"), scaling);
  c.rope_freq_scale = factor > 0 ? float(1.0 / factor) : 1.0f;
  c.rope_yarn = scaling == "yarn";
  c.rope_yarn_orig_ctx =
      f.find_int(key("rope.scaling.original_context_length")).value_or(c.n_ctx_train);
  c.rope_type = A.rope;
  if (const auto* v = f.find("imq.rope_type")) {  // imq synth only: llama itself is "normal"
    const std::string& t = v->as_string();
    if (t == "neox") c.rope_type = RopeType::Neox;
    else if (t != "normal")
      throw_error("{}: imq.rope_type '{}' is not 'normal' or 'neox'", f.path(), t);
  }

  c.n_expert = f.find_int(key("expert_count")).value_or(0);
  c.n_expert_used = f.find_int(key("expert_used_count")).value_or(0);
  if (c.n_expert < 0 || c.n_expert_used < 0 || c.n_expert_used > c.n_expert ||
      (c.n_expert > 0 && c.n_expert_used == 0))
    throw_error("{}: {} {} must be in 1..expert_count {}", f.path(), key("expert_used_count"),
                c.n_expert_used, c.n_expert);
  c.n_ff_exp = positive(f, key("expert_feed_forward_length"),
                        f.find_int(key("expert_feed_forward_length")).value_or(c.n_ff));

  // The architecture's differences from llama.
  c.qk_norm = A.qk_norm;
  c.post_norms = A.post_norms;
  c.ffn_act = A.act;
  if (A.embd_scale) c.embd_scale = std::sqrt(float(c.n_embd));
  c.kq_scale = 1.0f / std::sqrt(float(c.head_dim));
  if (A.q_scaled) std::swap(c.q_scale, c.kq_scale);
  if (A.swa) {
    c.n_swa = f.find_int(key("attention.sliding_window")).value_or(0);
    if (c.n_swa < 0)
      throw_error("{}: {} must not be negative, found {}", f.path(),
                  key("attention.sliding_window"), c.n_swa);
    c.swa_period = kGemma3SwaPeriod;
    c.rope_freq_base_swa =
        float(f.find_float(key("rope.freq_base_swa")).value_or(10000.0));
  }

  const auto& embd = f.tensor("token_embd.weight");
  c.n_vocab = embd.ne[1];
  if (auto vs = f.find_int(key("vocab_size")); vs && *vs != c.n_vocab)
    throw_error("{}: {} {} differs from token_embd.weight's {} rows", f.path(), key("vocab_size"),
                *vs, c.n_vocab);
  c.tied_output = f.find_tensor("output.weight") == nullptr;
  return c;
}

}  // namespace imq::model
