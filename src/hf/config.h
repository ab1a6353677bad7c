// config.json of a Hugging Face causal LM: the architecture class and the hyperparameters
// llama.cpp's converter turns into llama.* keys. Missing or mistyped keys and unsupported
// classes are one-line errors naming the file and the key or class.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

namespace imq::hf {

struct HfConfig {
  std::string path;          // config.json, for messages
  std::string architecture;  // architectures[0], e.g. "LlamaForCausalLM"
  int64_t hidden_size = 0, n_layer = 0, n_head = 0, n_head_kv = 0, intermediate_size = 0, vocab_size = 0;
  int64_t head_dim = 0;                      // head_dim, or hidden_size / n_head
  bool has_head_dim = false;                 // head_dim given (written as key/value length)
  int64_t n_expert = 0, n_expert_used = 0;   // num_local_experts, num_experts_per_tok (MoE)
  std::optional<int64_t> n_ctx;              // max_position_embeddings
  std::optional<double> rope_theta, rms_eps;
  std::optional<std::string> rope_scaling_type;  // "linear" (others are rejected)
  double rope_scaling_factor = 1.0;
  bool tie_word_embeddings = false;
  std::optional<int64_t> bos_id, eos_id, unk_id, sep_id, pad_id, cls_id, mask_id;  // *_token_id

  bool is_moe() const { return n_expert > 0; }
};

// Reads dir/config.json.
HfConfig read_config(const std::string& dir);
// Parses config.json text (`path` names it in messages).
HfConfig parse_config(const std::string& text, const std::string& path);

}  // namespace imq::hf
