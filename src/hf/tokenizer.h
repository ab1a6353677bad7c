// The tokenizer of an HF folder as the GGUF tokenizer.ggml.* keys llama.cpp's converter writes
// for a SentencePiece model (tokenizer.model), with tokenizer_config.json's added tokens and
// add_bos/add_eos flags, and the special ids of config.json.
//
// tokenizer.model is a protobuf ModelProto; only its pieces are read:
//   ModelProto    { repeated SentencePiece pieces = 1; ... }
//   SentencePiece { string piece = 1; float score = 2; Type type = 3 (default NORMAL = 1) }
//   Type: NORMAL 1, UNKNOWN 2, CONTROL 3, USER_DEFINED 4, UNUSED 5, BYTE 6
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace imq::hf {

struct HfConfig;

struct SpPiece {
  std::string piece;
  float score = 0.0f;
  int32_t type = 1;
};

// Parses a SentencePiece ModelProto; errors name `path` and the byte offset.
std::vector<SpPiece> parse_sentencepiece(std::span<const uint8_t> bytes, const std::string& path);

struct HfVocab {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;  // GGUF token types (1 normal ... 6 byte)
  std::vector<std::pair<std::string, uint32_t>> special_ids;  // ("bos", 1), in the converter's order
  std::vector<std::pair<std::string, bool>> add_special;      // ("bos", true), ...
  std::optional<std::string> chat_template;
};

// dir/tokenizer.model (required) plus tokenizer_config.json and added_tokens.json if present.
HfVocab read_vocab(const std::string& dir, const HfConfig& config);

}  // namespace imq::hf
