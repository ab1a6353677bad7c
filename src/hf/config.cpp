// config.json reader.
#include "hf/config.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "hf/json_error.h"
#include "imq/error.h"

namespace imq::hf {

namespace {

using nlohmann::json;

// Classes the converter knows, and the GGUF architecture llama.cpp's convert_hf_to_gguf.py
// writes for each (Llama and Mixtral are both "llama").
struct ClassRow {
  const char* name;
  HfArch arch;
  const char* gguf;
};
constexpr ClassRow kClasses[] = {
    {"LlamaForCausalLM", HfArch::Llama, "llama"},      {"MixtralForCausalLM", HfArch::Mixtral, "llama"},
    {"Qwen2ForCausalLM", HfArch::Qwen2, "qwen2"},      {"Qwen3ForCausalLM", HfArch::Qwen3, "qwen3"},
    {"Qwen3MoeForCausalLM", HfArch::Qwen3Moe, "qwen3moe"}, {"Gemma3ForCausalLM", HfArch::Gemma3, "gemma3"},
};

const ClassRow* find_class(const std::string& c) {
  for (const auto& row : kClasses)
    if (c == row.name) return &row;
  return nullptr;
}

std::string class_list() {
  std::string s;
  for (const auto& row : kClasses) s += std::string(s.empty() ? "" : ", ") + row.name;
  return s;
}

class Reader {
 public:
  Reader(const json& j, const std::string& path) : j_(j), path_(path) {}

  std::optional<int64_t> opt_int(const char* key, int64_t min = 1) const {
    if (!j_.contains(key) || j_[key].is_null()) return std::nullopt;
    const json& v = j_[key];
    if (!v.is_number_integer())
      throw_error("{}: key {} must be an integer, found {}", path_, key, v.dump());
    const int64_t x = v.get<int64_t>();
    // 2^31: products of two sizes stay far inside int64.
    if (x < min || x > (int64_t(1) << 31))
      throw_error("{}: key {} is {}, expected an integer in [{}, 2^31]", path_, key, x, min);
    return x;
  }
  int64_t req_int(const char* key) const {
    auto v = opt_int(key);
    if (!v) throw_error("{}: missing key {} (needed for {})", path_, key, arch_);
    return *v;
  }
  std::optional<double> opt_num(const char* key) const {
    if (!j_.contains(key) || j_[key].is_null()) return std::nullopt;
    const json& v = j_[key];
    if (!v.is_number()) throw_error("{}: key {} must be a number, found {}", path_, key, v.dump());
    return v.get<double>();
  }
  // A special token id: the converter takes plain non-negative integers and ignores the rest
  // (e.g. a list of eos ids).
  std::optional<int64_t> token_id(const char* key) const {
    if (!j_.contains(key) || !j_[key].is_number_integer()) return std::nullopt;
    const int64_t x = j_[key].get<int64_t>();
    if (x < 0) throw_error("{}: key {} is {}, expected a token id >= 0", path_, key, x);
    return x;
  }
  std::string arch_;

 private:
  const json& j_;
  const std::string& path_;
};

}  // namespace

HfConfig parse_config(const std::string& text, const std::string& path) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw_error("{}: not valid JSON ({})", path, json_error(e));
  }
  if (!j.is_object()) throw_error("{}: not a JSON object", path);
  HfConfig c;
  c.path = path;
  if (!j.contains("architectures") || !j["architectures"].is_array() || j["architectures"].empty() ||
      !j["architectures"][0].is_string())
    throw_error("{}: missing key architectures (a list naming the model class)", path);
  c.architecture = j["architectures"][0].get<std::string>();
  const ClassRow* cls = find_class(c.architecture);
  if (!cls)
    throw_error("{}: architecture {} is not supported (expected one of {})", path, c.architecture, class_list());
  c.arch = cls->arch;
  c.gguf_arch = cls->gguf;
  const bool gemma = c.arch == HfArch::Gemma3;
  Reader r(j, path);
  r.arch_ = c.architecture;
  c.hidden_size = r.req_int("hidden_size");
  c.n_layer = r.req_int("num_hidden_layers");
  // Gemma3's converter fills in transformers' defaults for the keys a config may leave out.
  c.n_head = gemma ? r.opt_int("num_attention_heads").value_or(8) : r.req_int("num_attention_heads");
  c.intermediate_size = r.req_int("intermediate_size");
  c.vocab_size = r.req_int("vocab_size");
  const auto n_kv = r.opt_int("num_key_value_heads");
  c.has_n_head_kv = n_kv.has_value();
  c.n_head_kv = n_kv.value_or(gemma ? 4 : c.n_head);
  if (c.n_head % c.n_head_kv != 0)
    throw_error("{}: num_attention_heads {} is not a multiple of num_key_value_heads {}", path, c.n_head,
                c.n_head_kv);
  if (auto hd = r.opt_int("head_dim")) {
    c.head_dim = *hd;
    c.has_head_dim = true;
  } else if (gemma) {
    c.head_dim = 256;
  } else {
    if (c.hidden_size % c.n_head != 0)
      throw_error("{}: hidden_size {} is not a multiple of num_attention_heads {} (and no head_dim)", path,
                  c.hidden_size, c.n_head);
    c.head_dim = c.hidden_size / c.n_head;
  }
  if (c.head_dim % 2 != 0) throw_error("{}: head_dim {} is odd (rotary pairs need an even size)", path, c.head_dim);
  if (c.arch == HfArch::Mixtral || c.arch == HfArch::Qwen3Moe) {
    const char* experts = c.arch == HfArch::Mixtral ? "num_local_experts" : "num_experts";
    c.n_expert = r.req_int(experts);
    c.n_expert_used = r.req_int("num_experts_per_tok");
    if (c.n_expert_used > c.n_expert)
      throw_error("{}: num_experts_per_tok {} exceeds {} {}", path, c.n_expert_used, experts, c.n_expert);
  }
  if (c.arch == HfArch::Qwen3Moe) {
    c.expert_ff = r.req_int("moe_intermediate_size");
    // Every layer must be an MoE layer: the engine (like llama.cpp's qwen3moe) has no dense ones.
    if (r.opt_int("decoder_sparse_step").value_or(1) != 1)
      throw_error("{}: decoder_sparse_step {} is not supported (every layer must be an MoE layer: 1)", path,
                  j["decoder_sparse_step"].dump());
    if (j.contains("mlp_only_layers") && !(j["mlp_only_layers"].is_array() && j["mlp_only_layers"].empty()) &&
        !j["mlp_only_layers"].is_null())
      throw_error("{}: mlp_only_layers {} is not supported (every layer must be an MoE layer)", path,
                  j["mlp_only_layers"].dump());
  }
  c.n_ctx = r.opt_int("max_position_embeddings");
  c.rope_theta = r.opt_num("rope_theta");
  c.rms_eps = r.opt_num("rms_norm_eps");
  if (gemma) {
    c.rope_theta_swa = r.opt_num("rope_local_base_freq");
    for (const char* k : {"attn_logit_softcapping", "final_logit_softcapping"})
      if (j.contains(k) && !j[k].is_null() && !(j[k].is_number() && j[k].get<double>() == 0))
        throw_error("{}: {} {} is not supported (the engine has no logit soft-capping)", path, k, j[k].dump());
    if (r.opt_int("sliding_window_pattern").value_or(0) != 1) c.sliding_window = r.req_int("sliding_window");
  }
  if (j.contains("tie_word_embeddings")) {
    if (!j["tie_word_embeddings"].is_boolean())
      throw_error("{}: key tie_word_embeddings must be true or false, found {}", path, j["tie_word_embeddings"].dump());
    c.tie_word_embeddings = j["tie_word_embeddings"].get<bool>();
  }
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
    const json& rs = j["rope_scaling"];
    std::string type;
    if (rs.is_object()) {
      for (const char* k : {"rope_type", "type"})
        if (rs.contains(k) && rs[k].is_string()) {
          type = rs[k].get<std::string>();
          break;
        }
    }
    if (type != "linear")
      throw_error("{}: rope_scaling {} is not supported (only \"linear\")", path, rs.dump());
    if (!rs.contains("factor") || !rs["factor"].is_number())
      throw_error("{}: rope_scaling has no numeric factor", path);
    c.rope_scaling_type = type;
    c.rope_scaling_factor = rs["factor"].get<double>();
  }
  c.bos_id = r.token_id("bos_token_id");
  c.eos_id = r.token_id("eos_token_id");
  c.unk_id = r.token_id("unk_token_id");
  c.sep_id = r.token_id("sep_token_id");
  c.pad_id = r.token_id("pad_token_id");
  c.cls_id = r.token_id("cls_token_id");
  c.mask_id = r.token_id("mask_token_id");
  return c;
}

HfConfig read_config(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / "config.json").string();
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_error("{}: cannot open (an HF model folder needs config.json)", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config(ss.str(), path);
}

}  // namespace imq::hf
