// Hugging Face model folders (config.json, safetensors weights, SentencePiece tokenizer.model or
// byte-level BPE tokenizer.json) as GGUF: the file llama.cpp's convert_hf_to_gguf.py writes (same
// tensor names, order, types, shapes and bytes, including its Q/K row permutation, Gemma's norm
// shift and its F32 -> F16/BF16 rounding; the metadata llama.cpp reads), to a file or in memory.
// LlamaForCausalLM, MixtralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, Qwen3MoeForCausalLM,
// Gemma3ForCausalLM.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "imq/gguf.h"

namespace imq::hf {

enum class OutType : uint8_t {
  F32,
  F16,
  BF16,
  Auto,      // llama.cpp's "auto": F16 when the first tensor is F16, else BF16
  Lossless,  // the first tensor's own type (F32, F16 or BF16): no rounding (model loading)
};
// "f32", "f16", "bf16", "auto"; throws naming the accepted values.
OutType parse_outtype(std::string_view s);

struct ConvertOptions {
  OutType outtype = OutType::F16;  // llama.cpp's default
};

// True when `path` is a directory (an HF model folder is the only directory imq reads).
bool is_model_dir(const std::string& path);

// The GGUF image of the HF folder `dir`. Throws imq::Error naming the file and what is wrong.
std::vector<uint8_t> convert_to_memory(const std::string& dir, const ConvertOptions& options);
// The same written to `out_path` atomically (temporary file renamed into place).
void convert(const std::string& dir, const std::string& out_path, const ConvertOptions& options);

// A model path as a GGUF file: a GGUF file is opened as gguf::File::open does, an HF folder is
// converted in memory (OutType::Lossless) and named by the folder in messages.
gguf::File open_model_file(const std::string& path, const gguf::OpenOptions& options = {});

}  // namespace imq::hf
