// Metadata as llama.cpp's converter writes it. Its writer keeps a key where it was first set
// when a later step sets it again (a Python dict), so the order is: general.*, then the base
// class's hyperparameters (TextModel.set_gguf_parameters), then each class's additions (those
// it sets again stay in place), general.quantization_version, then the vocabulary.
#include "hf/metadata.h"

#include <cmath>
#include <filesystem>

#include "hf/config.h"
#include "hf/tokenizer.h"
#include "imq/error.h"

namespace imq::hf {

namespace {

using gguf::Value;
using gguf::ValueType;

// Keys in insertion order; setting an existing key replaces its value in place.
class OrderedKeys {
 public:
  void put(const std::string& key, Value v) {
    for (auto& kv : kvs_)
      if (kv.key == key) {
        kv.value = std::move(v);
        return;
      }
    kvs_.push_back({key, std::move(v)});
  }
  void move_to(gguf::Writer& w) {
    for (auto& kv : kvs_) w.set(std::move(kv.key), std::move(kv.value));
    kvs_.clear();
  }

 private:
  std::vector<gguf::KeyValue> kvs_;
};

uint32_t file_type(GgmlType t) { return t == GgmlType::F32 ? 0 : t == GgmlType::F16 ? 1 : 32; }

bool is_lower_word(const std::string& w) {
  bool cased = false;
  for (char ch : w) {
    if (std::isupper(static_cast<unsigned char>(ch))) return false;
    cased |= std::islower(static_cast<unsigned char>(ch)) != 0;
  }
  return cased;
}

// Python's str.title() on ASCII: a letter after a non-letter is upper-cased, the others lowered.
std::string title(const std::string& w) {
  std::string out;
  bool prev_cased = false;
  for (char ch : w) {
    const unsigned char u = static_cast<unsigned char>(ch);
    const bool cased = std::isalpha(u) != 0;
    out += cased ? char(prev_cased ? std::tolower(u) : std::toupper(u)) : ch;
    prev_cased = cased;
  }
  return out;
}

// gguf-py keeps version-like words ("v2", "v1.5") and words starting with a digit as they are.
bool version_like(const std::string& w) {
  if (w.empty()) return false;
  if (std::isdigit(static_cast<unsigned char>(w[0]))) return true;
  if (w[0] != 'v' || w.size() < 2) return false;
  bool digit = false;
  for (size_t i = 1; i < w.size(); ++i) {
    if (std::isdigit(static_cast<unsigned char>(w[i]))) digit = true;
    else if (w[i] == '.' && digit && i + 1 < w.size()) digit = false;
    else return false;
  }
  return digit;
}

}  // namespace

std::string size_label(uint64_t n) {
  double scaled;
  const char* suffix;
  if (n > 1e12) scaled = double(n) * 1e-12, suffix = "T";
  else if (n > 1e9) scaled = double(n) * 1e-9, suffix = "B";
  else if (n > 1e6) scaled = double(n) * 1e-6, suffix = "M";
  else scaled = double(n) * 1e-3, suffix = "K";
  const int digits = int(std::to_string(int64_t(std::nearbyint(scaled))).size());
  return fmt::format("{:.{}f}{}", scaled, std::max(2 - digits, 0), suffix);
}

std::string model_name(const std::string& dir) {
  std::string base = std::filesystem::path(dir).lexically_normal().filename().string();
  if (base.empty()) base = std::filesystem::path(dir).lexically_normal().parent_path().filename().string();
  if (base.find(' ') != std::string::npos) return base;  // already a human name
  for (char& ch : base)
    if (ch == '-') ch = ' ';
  std::string out, word;
  auto flush = [&] {
    if (word.empty()) return;
    out += (out.empty() ? "" : " ") + (is_lower_word(word) && !version_like(word) ? title(word) : word);
    word.clear();
  };
  for (char ch : base) {
    if (std::isspace(static_cast<unsigned char>(ch))) flush();
    else word += ch;
  }
  flush();
  return out;
}

void write_metadata(gguf::Writer& w, const HfConfig& c, const std::string& dir, GgmlType outtype,
                    const std::vector<TensorSummary>& tensors, const HfVocab& vocab) {
  uint64_t shared = 0, expert = 0;
  for (const auto& t : tensors) {
    uint64_t n = 1;
    for (int64_t d : t.shape) n *= uint64_t(d);
    if (t.name.find("_exps.") != std::string::npos) expert += n / uint64_t(t.shape[0]);
    else shared += n;
  }
  const std::string a = c.gguf_arch + ".";
  const bool llama = c.arch == HfArch::Llama || c.arch == HfArch::Mixtral;
  OrderedKeys k;
  k.put("general.architecture", Value::str(c.gguf_arch));
  k.put("general.type", Value::str("model"));
  k.put("general.name", Value::str(model_name(dir)));
  k.put("general.size_label",
        Value::str(c.is_moe() ? fmt::format("{}x{}", c.n_expert, size_label(shared + expert)) : size_label(shared)));

  // TextModel.set_gguf_parameters: the keys config.json has.
  k.put(a + "block_count", Value::u32(uint32_t(c.n_layer)));
  if (c.n_ctx) k.put(a + "context_length", Value::u32(uint32_t(*c.n_ctx)));
  k.put(a + "embedding_length", Value::u32(uint32_t(c.hidden_size)));
  k.put(a + "feed_forward_length", Value::u32(uint32_t(c.intermediate_size)));
  k.put(a + "attention.head_count", Value::u32(uint32_t(c.n_head)));
  if (c.has_n_head_kv || llama) k.put(a + "attention.head_count_kv", Value::u32(uint32_t(c.n_head_kv)));
  if (c.rope_scaling_type && !llama) {
    k.put(a + "rope.scaling.type", Value::str(*c.rope_scaling_type));
    k.put(a + "rope.scaling.factor", Value::f32(float(c.rope_scaling_factor)));
  }
  if (c.rope_theta) k.put(a + "rope.freq_base", Value::f32(float(*c.rope_theta)));
  if (c.rope_theta_swa) k.put(a + "rope.freq_base_swa", Value::f32(float(*c.rope_theta_swa)));
  if (c.rms_eps) k.put(a + "attention.layer_norm_rms_epsilon", Value::f32(float(*c.rms_eps)));
  if (c.is_moe()) {
    k.put(a + "expert_count", Value::u32(uint32_t(c.n_expert)));
    k.put(a + "expert_used_count", Value::u32(uint32_t(c.n_expert_used)));
  }
  if (c.has_head_dim) {
    k.put(a + "attention.key_length", Value::u32(uint32_t(c.head_dim)));
    k.put(a + "attention.value_length", Value::u32(uint32_t(c.head_dim)));
  }
  k.put("general.file_type", Value::u32(file_type(outtype)));

  // Each class's additions.
  switch (c.arch) {
    case HfArch::Llama:
    case HfArch::Mixtral:
      k.put(a + "vocab_size", Value::u32(uint32_t(c.vocab_size)));
      k.put(a + "rope.dimension_count", Value::u32(uint32_t(c.head_dim)));
      if (c.rope_scaling_type) {
        k.put(a + "rope.scaling.type", Value::str(*c.rope_scaling_type));
        k.put(a + "rope.scaling.factor", Value::f32(float(c.rope_scaling_factor)));
      }
      break;
    case HfArch::Qwen3Moe:
      k.put(a + "expert_feed_forward_length", Value::u32(uint32_t(c.expert_ff)));
      break;
    case HfArch::Gemma3:
      // Gemma3Model.set_gguf_parameters, with transformers' defaults for absent keys.
      k.put(a + "context_length", Value::u32(uint32_t(c.n_ctx.value_or(131072))));
      k.put(a + "attention.head_count", Value::u32(uint32_t(c.n_head)));
      k.put(a + "attention.layer_norm_rms_epsilon", Value::f32(float(c.rms_eps.value_or(1e-6))));
      k.put(a + "attention.key_length", Value::u32(uint32_t(c.head_dim)));
      k.put(a + "attention.value_length", Value::u32(uint32_t(c.head_dim)));
      k.put(a + "rope.freq_base", Value::f32(float(c.rope_theta.value_or(1e6))));
      if (c.sliding_window) k.put(a + "attention.sliding_window", Value::u32(uint32_t(*c.sliding_window)));
      k.put(a + "attention.head_count_kv", Value::u32(uint32_t(c.n_head_kv)));
      break;
    case HfArch::Qwen2:
    case HfArch::Qwen3:
      break;
  }
  k.put("general.quantization_version", Value::u32(2));

  // The vocabulary (tokenizer.h).
  k.put("tokenizer.ggml.model", Value::str(vocab.model));
  k.put("tokenizer.ggml.pre", Value::str(vocab.pre));
  k.put("tokenizer.ggml.tokens", Value::string_array(vocab.tokens));
  if (!vocab.scores.empty()) {
    std::vector<Value> scores;
    for (float s : vocab.scores) scores.push_back(Value::f32(s));
    k.put("tokenizer.ggml.scores", Value::array(ValueType::FLOAT32, std::move(scores)));
  }
  std::vector<Value> types;
  for (int32_t t : vocab.types) types.push_back(Value::i32(t));
  k.put("tokenizer.ggml.token_type", Value::array(ValueType::INT32, std::move(types)));
  if (!vocab.merges.empty()) k.put("tokenizer.ggml.merges", Value::string_array(vocab.merges));
  for (const auto& [typ, id] : vocab.special_ids) k.put(special_id_key(typ), Value::u32(id));
  for (const auto& [typ, add] : vocab.add_special) k.put("tokenizer.ggml.add_" + typ + "_token", Value::boolean(add));
  if (vocab.chat_template) k.put("tokenizer.chat_template", Value::str(*vocab.chat_template));
  if (c.arch == HfArch::Gemma3 && vocab.model == "llama")
    k.put("tokenizer.ggml.add_space_prefix", Value::boolean(false));
  k.move_to(w);
}

}  // namespace imq::hf
