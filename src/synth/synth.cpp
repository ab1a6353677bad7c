// Random-weight models of every architecture imq runs (llama, llama-MoE, qwen2, qwen3,
// qwen3moe, gemma3) for tests and benchmarks. Weights are uniform in ±1/sqrt(fan_in) (norm
// weights 1, biases ±0.5), drawn from a generator seeded per tensor, so a file depends only on
// its options; tensors are produced one at a time while writing.
#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "imq/error.h"
#include "imq/gguf.h"
#include "synth/vocab.h"

namespace imq::model {
namespace {

struct TensorSpec {
  std::string name;
  std::vector<int64_t> ne;
  GgmlType type;
  float range;  // 0: all ones (norm weights)
};

uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void fill(const TensorSpec& t, uint64_t seed, size_t index, std::vector<uint8_t>& out) {
  int64_t n = 1;
  for (int64_t d : t.ne) n *= d;
  const bool f16 = t.type == GgmlType::F16;
  out.resize(size_t(n) * (f16 ? 2 : 4));
  uint64_t s = seed ^ (0xA0761D6478BD642Full * (index + 1));
  for (int64_t i = 0; i < n; ++i) {
    float v = 1.0f;
    if (t.range > 0) {
      const double u = double(splitmix(s) >> 11) * 0x1.0p-53;  // [0, 1)
      v = float((2 * u - 1) * t.range);
    }
    if (f16) {
      const uint16_t h = f32_to_f16(v);
      std::memcpy(out.data() + 2 * i, &h, 2);
    } else {
      std::memcpy(out.data() + 4 * i, &v, 4);
    }
  }
}

void copy_vocab(const std::string& path, gguf::Writer& w, int64_t& n_vocab) {
  auto src = gguf::File::open(path);
  bool found = false;
  for (const auto& kv : src.kvs())
    if (kv.key.rfind("tokenizer.", 0) == 0) {
      w.set(kv.key, kv.value);
      if (kv.key == "tokenizer.ggml.tokens") {
        n_vocab = int64_t(kv.value.as_array().items.size());
        found = true;
      }
    }
  if (!found) throw_error("{}: no tokenizer.ggml.tokens to copy", path);
}

}  // namespace

void write_synthetic_model(const SynthOptions& options, const std::string& path) {
  SynthOptions o = options;
  const std::string& arch = o.arch;
  if (arch != "llama" && arch != "qwen2" && arch != "qwen3" && arch != "qwen3moe" && arch != "gemma3")
    throw_error("synth: unknown architecture '{}' (llama, qwen2, qwen3, qwen3moe, gemma3)", arch);
  if (arch == "qwen3moe") o.moe = true;
  if (o.moe && arch != "llama" && arch != "qwen3moe")
    throw_error("synth: architecture '{}' has no MoE variant", arch);
  if (arch == "qwen3" || arch == "gemma3") o.tied = true;  // as the released models
  const bool biases = arch == "qwen2";
  const bool qk_norm = arch == "qwen3" || arch == "qwen3moe" || arch == "gemma3";
  const bool gemma = arch == "gemma3";
  if (o.n_embd <= 0 || o.n_layer <= 0 || o.n_head <= 0 || o.n_head_kv <= 0 || o.n_ff <= 0)
    throw_error("synth: sizes must be positive");
  if (o.n_embd % o.n_head != 0 || o.n_head % o.n_head_kv != 0 || (o.n_embd / o.n_head) % 2 != 0)
    throw_error("synth: n_embd {} must split into {} heads of even size, and n_head into {} kv heads",
                o.n_embd, o.n_head, o.n_head_kv);
  if (o.moe && (o.n_expert < 1 || o.n_expert_used < 1 || o.n_expert_used > o.n_expert))
    throw_error("synth: need 1 <= n_expert_used ({}) <= n_expert ({})", o.n_expert_used, o.n_expert);
  if (o.type != GgmlType::F32 && o.type != GgmlType::F16)
    throw_error("synth: weight type must be f32 or f16");

  gguf::Writer w;
  int64_t n_vocab = o.n_vocab;
  const int64_t head_dim = o.n_embd / o.n_head;
  const std::string k = arch + ".";  // hyperparameter keys, as llama.cpp's converter writes them
  w.set("general.architecture", gguf::Value::str(arch));
  w.set("general.name", gguf::Value::str(o.moe ? "imq-synth-moe" : "imq-synth"));
  w.set("general.file_type", gguf::Value::u32(o.type == GgmlType::F16 ? 1 : 0));
  w.set(k + "context_length", gguf::Value::u32(uint32_t(o.n_ctx_train)));
  w.set(k + "embedding_length", gguf::Value::u32(uint32_t(o.n_embd)));
  w.set(k + "block_count", gguf::Value::u32(uint32_t(o.n_layer)));
  // qwen3moe's dense width is unused (its experts have their own): make it differ.
  w.set(k + "feed_forward_length", gguf::Value::u32(uint32_t(arch == "qwen3moe" ? 2 * o.n_ff : o.n_ff)));
  w.set(k + "attention.head_count", gguf::Value::u32(uint32_t(o.n_head)));
  w.set(k + "attention.head_count_kv", gguf::Value::u32(uint32_t(o.n_head_kv)));
  w.set(k + "rope.dimension_count", gguf::Value::u32(uint32_t(head_dim)));
  w.set(k + "rope.freq_base", gguf::Value::f32(gemma ? 1e6f : 10000.0f));
  w.set(k + "attention.layer_norm_rms_epsilon", gguf::Value::f32(1e-5f));
  if (o.moe) {
    w.set(k + "expert_count", gguf::Value::u32(uint32_t(o.n_expert)));
    w.set(k + "expert_used_count", gguf::Value::u32(uint32_t(o.n_expert_used)));
    if (arch == "qwen3moe") w.set(k + "expert_feed_forward_length", gguf::Value::u32(uint32_t(o.n_ff)));
  }
  if (gemma) {
    w.set(k + "attention.sliding_window", gguf::Value::u32(uint32_t(o.n_swa)));
    w.set(k + "rope.freq_base_swa", gguf::Value::f32(10000.0f));
  }
  if (o.rope == RopeType::Neox && arch == "llama") w.set("imq.rope_type", gguf::Value::str("neox"));
  if (!o.vocab_from.empty()) {
    copy_vocab(o.vocab_from, w, n_vocab);
  } else {
    const SynthVocab v = make_synth_vocab(n_vocab, o.seed);
    std::vector<gguf::Value> scores, types;
    for (float s : v.scores) scores.push_back(gguf::Value::f32(s));
    for (int32_t t : v.types) types.push_back(gguf::Value::i32(t));
    w.set("tokenizer.ggml.model", gguf::Value::str("llama"));
    w.set("tokenizer.ggml.tokens", gguf::Value::string_array(v.tokens));
    w.set("tokenizer.ggml.scores", gguf::Value::array(gguf::ValueType::FLOAT32, std::move(scores)));
    w.set("tokenizer.ggml.token_type", gguf::Value::array(gguf::ValueType::INT32, std::move(types)));
    w.set("tokenizer.ggml.bos_token_id", gguf::Value::u32(1));
    w.set("tokenizer.ggml.eos_token_id", gguf::Value::u32(2));
    w.set("tokenizer.ggml.unknown_token_id", gguf::Value::u32(0));
    w.set("tokenizer.ggml.add_bos_token", gguf::Value::boolean(true));
    w.set("tokenizer.ggml.add_eos_token", gguf::Value::boolean(false));
  }
  w.set(k + "vocab_size", gguf::Value::u32(uint32_t(n_vocab)));

  // Tensors in llama.cpp's order.
  const GgmlType F32 = GgmlType::F32, wt = o.type;
  const int64_t n_q = o.n_head * head_dim, n_kv = o.n_head_kv * head_dim;
  auto r = [](int64_t fan_in) { return float(1.0 / std::sqrt(double(fan_in))); };
  std::vector<TensorSpec> specs;
  specs.push_back({"token_embd.weight", {o.n_embd, n_vocab}, wt, r(o.n_embd)});
  specs.push_back({"output_norm.weight", {o.n_embd}, F32, 0});
  if (!o.tied) specs.push_back({"output.weight", {o.n_embd, n_vocab}, wt, r(o.n_embd)});
  for (int64_t il = 0; il < o.n_layer; ++il) {
    const std::string p = fmt::format("blk.{}.", il);
    specs.push_back({p + "attn_norm.weight", {o.n_embd}, F32, 0});
    specs.push_back({p + "attn_q.weight", {o.n_embd, n_q}, wt, r(o.n_embd)});
    specs.push_back({p + "attn_k.weight", {o.n_embd, n_kv}, wt, r(o.n_embd)});
    specs.push_back({p + "attn_v.weight", {o.n_embd, n_kv}, wt, r(o.n_embd)});
    specs.push_back({p + "attn_output.weight", {n_q, o.n_embd}, wt, r(n_q)});
    if (biases) {
      specs.push_back({p + "attn_q.bias", {n_q}, F32, 0.5f});
      specs.push_back({p + "attn_k.bias", {n_kv}, F32, 0.5f});
      specs.push_back({p + "attn_v.bias", {n_kv}, F32, 0.5f});
    }
    if (qk_norm) {
      specs.push_back({p + "attn_q_norm.weight", {head_dim}, F32, 0});
      specs.push_back({p + "attn_k_norm.weight", {head_dim}, F32, 0});
    }
    if (gemma) specs.push_back({p + "post_attention_norm.weight", {o.n_embd}, F32, 0});
    specs.push_back({p + "ffn_norm.weight", {o.n_embd}, F32, 0});
    if (gemma) specs.push_back({p + "post_ffw_norm.weight", {o.n_embd}, F32, 0});
    if (o.moe) {
      specs.push_back({p + "ffn_gate_inp.weight", {o.n_embd, o.n_expert}, F32, r(o.n_embd)});
      specs.push_back({p + "ffn_gate_exps.weight", {o.n_embd, o.n_ff, o.n_expert}, wt, r(o.n_embd)});
      specs.push_back({p + "ffn_down_exps.weight", {o.n_ff, o.n_embd, o.n_expert}, wt, r(o.n_ff)});
      specs.push_back({p + "ffn_up_exps.weight", {o.n_embd, o.n_ff, o.n_expert}, wt, r(o.n_embd)});
    } else {
      specs.push_back({p + "ffn_gate.weight", {o.n_embd, o.n_ff}, wt, r(o.n_embd)});
      specs.push_back({p + "ffn_down.weight", {o.n_ff, o.n_embd}, wt, r(o.n_ff)});
      specs.push_back({p + "ffn_up.weight", {o.n_embd, o.n_ff}, wt, r(o.n_embd)});
    }
  }
  for (const auto& t : specs) w.add_tensor_deferred(t.name, t.type, t.ne);
  std::vector<uint8_t> buf;
  w.write(path, [&](size_t i) -> std::span<const uint8_t> {
    fill(specs[i], o.seed, i, buf);
    return buf;
  });
}

}  // namespace imq::model
