// HF tensor names -> GGUF tensor names, per architecture, as llama.cpp's converter maps them
// (gguf-py's tensor_mapping.py for these classes), with the shape config.json implies and what
// the converter does to the tensor on the way:
//   llama, Mixtral    q_proj / k_proj rows permuted back to llama's interleaved rotary pairs
//   qwen2             q/k/v biases (attn_{q,k,v}.bias, F32)
//   qwen3, qwen3moe   per-head q_norm / k_norm (attn_{q,k}_norm)
//   gemma3            q_norm / k_norm, post-attention and post-FFN norms; every *norm.weight
//                     gets +1 (Gemma's RMSNorm multiplies by 1 + w)
//   Mixtral           block_sparse_moe.gate (router), experts.E.w1/w2/w3 stacked as gate, down, up
//   qwen3moe          mlp.gate (router), mlp.experts.E.{gate,up,down}_proj stacked as down, gate, up
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hf/config.h"

namespace imq::hf {

enum class TensorKind : uint8_t { Plain, PermuteQ, PermuteK, Expert };

struct MappedTensor {
  std::string gguf;             // GGUF name (for experts: the stacked tensor's)
  std::vector<int64_t> expect;  // expected HF shape
  TensorKind kind = TensorKind::Plain;
  bool norm_shift = false;      // gemma3: +1 on the values
  int64_t layer = -1, expert = -1;
  int slot = -1;                // experts: index in expert_stack_names()
};

// The GGUF name and expected shape of HF tensor `name`; nullopt for names the converter does
// not know for this architecture.
std::optional<MappedTensor> map_tensor(const std::string& name, const HfConfig& c);

// Why an otherwise known name is refused because its layer or expert index is past
// config.json's counts ("" otherwise).
std::string index_past_config(std::string_view name, const HfConfig& c);

// The stacked expert tensors of one layer, in the order the converter writes them.
std::array<const char*, 3> expert_stack_names(const HfConfig& c);

// Every GGUF tensor the model needs (the output projection may be tied to the embeddings).
std::vector<std::string> required_tensors(const HfConfig& c);

}  // namespace imq::hf
