// The per-architecture tensor name table (see tensor_map.h).
#include "hf/tensor_map.h"

#include "imq/error.h"

namespace imq::hf {

namespace {

// Which architectures a row applies to.
enum : uint32_t {
  kLlama = 1u << int(HfArch::Llama),
  kMixtral = 1u << int(HfArch::Mixtral),
  kQwen2 = 1u << int(HfArch::Qwen2),
  kQwen3 = 1u << int(HfArch::Qwen3),
  kQwen3Moe = 1u << int(HfArch::Qwen3Moe),
  kGemma3 = 1u << int(HfArch::Gemma3),
  kAll = kLlama | kMixtral | kQwen2 | kQwen3 | kQwen3Moe | kGemma3,
  kDenseFfn = kLlama | kQwen2 | kQwen3 | kGemma3,
  kQkNorm = kQwen3 | kQwen3Moe | kGemma3,
};

// The shape a tensor must have, in config.json's sizes (H hidden, Q = heads x head_dim,
// KV = kv heads x head_dim, F = intermediate_size, E = experts, D = head_dim).
enum class Shape : uint8_t { H, QxH, KVxH, HxQ, FxH, HxF, ExH, Q, KV, D };

struct LayerRow {
  const char* hf;    // after "model.layers.N."
  const char* gguf;  // after "blk.N."
  Shape shape;
  uint32_t archs;
  TensorKind kind = TensorKind::Plain;
};

constexpr LayerRow kLayerRows[] = {
    {"input_layernorm.weight", "attn_norm.weight", Shape::H, kAll},
    {"post_attention_layernorm.weight", "ffn_norm.weight", Shape::H, kAll & ~kGemma3},
    {"post_attention_layernorm.weight", "post_attention_norm.weight", Shape::H, kGemma3},  // diff: gemma3
    {"pre_feedforward_layernorm.weight", "ffn_norm.weight", Shape::H, kGemma3},
    {"post_feedforward_layernorm.weight", "post_ffw_norm.weight", Shape::H, kGemma3},
    {"self_attn.q_proj.weight", "attn_q.weight", Shape::QxH, kLlama | kMixtral, TensorKind::PermuteQ},
    {"self_attn.k_proj.weight", "attn_k.weight", Shape::KVxH, kLlama | kMixtral, TensorKind::PermuteK},
    {"self_attn.q_proj.weight", "attn_q.weight", Shape::QxH, kAll & ~(kLlama | kMixtral)},
    {"self_attn.k_proj.weight", "attn_k.weight", Shape::KVxH, kAll & ~(kLlama | kMixtral)},
    {"self_attn.v_proj.weight", "attn_v.weight", Shape::KVxH, kAll},
    {"self_attn.o_proj.weight", "attn_output.weight", Shape::HxQ, kAll},
    {"self_attn.q_proj.bias", "attn_q.bias", Shape::Q, kQwen2},  // diff: qwen2
    {"self_attn.k_proj.bias", "attn_k.bias", Shape::KV, kQwen2},
    {"self_attn.v_proj.bias", "attn_v.bias", Shape::KV, kQwen2},
    {"self_attn.q_norm.weight", "attn_q_norm.weight", Shape::D, kQkNorm},  // diff: qwen3, gemma3
    {"self_attn.k_norm.weight", "attn_k_norm.weight", Shape::D, kQkNorm},
    {"mlp.gate_proj.weight", "ffn_gate.weight", Shape::FxH, kDenseFfn},
    {"mlp.up_proj.weight", "ffn_up.weight", Shape::FxH, kDenseFfn},
    {"mlp.down_proj.weight", "ffn_down.weight", Shape::HxF, kDenseFfn},
    {"block_sparse_moe.gate.weight", "ffn_gate_inp.weight", Shape::ExH, kMixtral},
    {"mlp.gate.weight", "ffn_gate_inp.weight", Shape::ExH, kQwen3Moe},
};

// Experts: the HF prefix after "model.layers.N." and the three per-expert names, in the slot
// order of expert_stack_names().
struct ExpertRow {
  const char* prefix;
  std::array<const char*, 3> names;
  std::array<const char*, 3> stacked;
};
constexpr ExpertRow kMixtralExperts = {
    "block_sparse_moe.experts.", {"w1.weight", "w2.weight", "w3.weight"},
    {"ffn_gate_exps.weight", "ffn_down_exps.weight", "ffn_up_exps.weight"}};
constexpr ExpertRow kQwen3MoeExperts = {
    "mlp.experts.", {"down_proj.weight", "gate_proj.weight", "up_proj.weight"},
    {"ffn_down_exps.weight", "ffn_gate_exps.weight", "ffn_up_exps.weight"}};

const ExpertRow* experts_of(const HfConfig& c) {
  if (c.arch == HfArch::Mixtral) return &kMixtralExperts;
  if (c.arch == HfArch::Qwen3Moe) return &kQwen3MoeExperts;
  return nullptr;
}

bool applies(uint32_t archs, const HfConfig& c) { return (archs >> int(c.arch)) & 1u; }

// "12." at the front of `s`: the index, and `s` advanced past the dot.
bool parse_index(std::string_view& s, int64_t& out) {
  size_t n = 0;
  out = 0;
  while (n < s.size() && n < 9 && s[n] >= '0' && s[n] <= '9') out = out * 10 + (s[n++] - '0');
  if (n == 0 || n >= s.size() || s[n] != '.' || (n > 1 && s[0] == '0')) return false;
  s.remove_prefix(n + 1);
  return true;
}

std::vector<int64_t> shape_of(Shape s, const HfConfig& c) {
  const int64_t H = c.hidden_size, Q = c.n_head * c.head_dim, KV = c.n_head_kv * c.head_dim;
  const int64_t F = c.intermediate_size;
  switch (s) {
    case Shape::H: return {H};
    case Shape::QxH: return {Q, H};
    case Shape::KVxH: return {KV, H};
    case Shape::HxQ: return {H, Q};
    case Shape::FxH: return {F, H};
    case Shape::HxF: return {H, F};
    case Shape::ExH: return {c.n_expert, H};
    case Shape::Q: return {Q};
    case Shape::KV: return {KV};
    case Shape::D: return {c.head_dim};
  }
  return {};
}

bool is_norm(std::string_view hf_name) { return hf_name.ends_with("norm.weight"); }

}  // namespace

std::optional<MappedTensor> map_tensor(const std::string& name, const HfConfig& c) {
  const bool shift = c.arch == HfArch::Gemma3 && is_norm(name);
  const int64_t H = c.hidden_size;
  if (name == "model.embed_tokens.weight") return MappedTensor{"token_embd.weight", {c.vocab_size, H}};
  if (name == "model.norm.weight") return MappedTensor{"output_norm.weight", {H}, TensorKind::Plain, shift};
  if (name == "lm_head.weight") return MappedTensor{"output.weight", {c.vocab_size, H}};
  std::string_view s = name;
  if (!s.starts_with("model.layers.")) return std::nullopt;
  s.remove_prefix(13);
  int64_t il = 0;
  if (!parse_index(s, il) || il >= c.n_layer) return std::nullopt;
  const std::string blk = "blk." + std::to_string(il) + ".";
  for (const LayerRow& row : kLayerRows)
    if (s == row.hf && applies(row.archs, c))
      return MappedTensor{blk + row.gguf, shape_of(row.shape, c), row.kind, shift};
  const ExpertRow* ex = experts_of(c);
  if (!ex || !s.starts_with(ex->prefix)) return std::nullopt;
  s.remove_prefix(std::string_view(ex->prefix).size());
  int64_t e = 0;
  if (!parse_index(s, e) || e >= c.n_expert) return std::nullopt;
  const int64_t F = c.arch == HfArch::Qwen3Moe ? c.expert_ff : c.intermediate_size;
  for (int slot = 0; slot < 3; ++slot)
    if (s == ex->names[size_t(slot)]) {
      const bool down = std::string_view(ex->stacked[size_t(slot)]).starts_with("ffn_down");
      MappedTensor m{blk + ex->stacked[size_t(slot)], down ? std::vector<int64_t>{H, F} : std::vector<int64_t>{F, H},
                     TensorKind::Expert};
      m.layer = il;
      m.expert = e;
      m.slot = slot;
      return m;
    }
  return std::nullopt;
}

std::string index_past_config(std::string_view s, const HfConfig& c) {
  int64_t il = 0, e = 0;
  if (!s.starts_with("model.layers.")) return "";
  s.remove_prefix(13);
  if (!parse_index(s, il)) return "";
  if (il >= c.n_layer) return fmt::format("layer {} is past {}'s num_hidden_layers {}", il, c.path, c.n_layer);
  const ExpertRow* ex = experts_of(c);
  if (!ex || !s.starts_with(ex->prefix)) return "";
  s.remove_prefix(std::string_view(ex->prefix).size());
  if (parse_index(s, e) && e >= c.n_expert)
    return fmt::format("expert {} is past {}'s {} {}", e, c.path,
                       c.arch == HfArch::Mixtral ? "num_local_experts" : "num_experts", c.n_expert);
  return "";
}

std::array<const char*, 3> expert_stack_names(const HfConfig& c) {
  const ExpertRow* ex = experts_of(c);
  if (!ex) throw_error("{}: {} has no experts", c.path, c.architecture);
  return ex->stacked;
}

std::vector<std::string> required_tensors(const HfConfig& c) {
  std::vector<std::string> need = {"token_embd.weight", "output_norm.weight"};
  for (int64_t il = 0; il < c.n_layer; ++il) {
    const std::string b = "blk." + std::to_string(il) + ".";
    for (const LayerRow& row : kLayerRows)
      if (applies(row.archs, c)) need.push_back(b + row.gguf);
    if (c.is_moe())
      for (const char* n : expert_stack_names(c)) need.push_back(b + n);
  }
  return need;
}

}  // namespace imq::hf
