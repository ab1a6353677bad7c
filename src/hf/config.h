// config.json of a Hugging Face causal LM: the architecture class and the hyperparameters
// llama.cpp's converter turns into <arch>.* keys. Missing or mistyped keys and unsupported
// classes are one-line errors naming the file and the key or class.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

namespace imq::hf {

// The HF classes the converter handles, each written as one GGUF architecture.
enum class HfArch : uint8_t { Llama, Mixtral, Qwen2, Qwen3, Qwen3Moe, Gemma3 };

struct HfConfig {
  std::string path;          // config.json, for messages
  std::string architecture;  // architectures[0], e.g. "LlamaForCausalLM"
  HfArch arch = HfArch::Llama;
  std::string gguf_arch;     // general.architecture: "llama", "qwen2", "qwen3", "qwen3moe", "gemma3"
  int64_t hidden_size = 0, n_layer = 0, n_head = 0, n_head_kv = 0, intermediate_size = 0, vocab_size = 0;
  int64_t head_dim = 0;                      // head_dim, or hidden_size / n_head
  bool has_head_dim = false;                 // head_dim given (written as key/value length)
  bool has_n_head_kv = false;                // num_key_value_heads given (written as head_count_kv)
  int64_t n_expert = 0, n_expert_used = 0;   // num_local_experts / num_experts, num_experts_per_tok
  int64_t expert_ff = 0;                     // moe_intermediate_size (qwen3moe's expert FFN)
  std::optional<int64_t> n_ctx;              // max_position_embeddings
  std::optional<double> rope_theta, rms_eps;
  std::optional<double> rope_theta_swa;      // gemma3: rope_local_base_freq (sliding layers)
  std::optional<int64_t> sliding_window;     // gemma3: written unless sliding_window_pattern is 1
  std::optional<std::string> rope_scaling_type;  // "linear" (others are rejected)
  double rope_scaling_factor = 1.0;
  bool tie_word_embeddings = false;
  std::optional<int64_t> bos_id, eos_id, unk_id, sep_id, pad_id, cls_id, mask_id;  // *_token_id

  bool is_moe() const { return n_expert > 0; }
  bool permutes_qk() const { return arch == HfArch::Llama || arch == HfArch::Mixtral; }  // llama's rope order
  bool qk_norm() const { return arch == HfArch::Qwen3 || arch == HfArch::Qwen3Moe || arch == HfArch::Gemma3; }
};

// Reads dir/config.json.
HfConfig read_config(const std::string& dir);
// Parses config.json text (`path` names it in messages).
HfConfig parse_config(const std::string& text, const std::string& path);

}  // namespace imq::hf
