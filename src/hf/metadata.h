// The metadata keys llama.cpp's converter writes for an HF folder, in its order: general.*,
// the architecture's hyperparameters (<arch>.*), then the tokenizer (tokenizer.ggml.*).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "imq/gguf.h"

namespace imq::hf {

struct HfConfig;
struct HfVocab;

// What the metadata needs to know about the converted tensors.
struct TensorSummary {
  std::string name;
  std::vector<int64_t> shape;  // PyTorch order
};

// gguf-py's parameter-count label: "5.2M", or "4x3.3M" for experts (shared + one expert).
std::string size_label(uint64_t n);
// gguf-py's title of a folder name: "dense-spm4k" -> "Dense Spm4K", "qwen3moe" -> "Qwen3Moe".
std::string model_name(const std::string& dir);

// Sets every key on `w`, in the converter's order.
void write_metadata(gguf::Writer& w, const HfConfig& c, const std::string& dir, GgmlType outtype,
                    const std::vector<TensorSummary>& tensors, const HfVocab& vocab);

}  // namespace imq::hf
