// The tokenizer of an HF folder as the GGUF tokenizer.ggml.* keys llama.cpp's converter writes:
// - a SentencePiece model (tokenizer.model) -> "llama", with added_tokens.json and
//   tokenizer_config.json's added tokens;
// - else a byte-level BPE tokenizer.json (Hugging Face tokenizers) -> "gpt2", with its merges
//   and tokenizer.ggml.pre named from the pre-tokenizer's split regex (tokenizer_json.cpp);
// and the special ids and add_* flags as gguf-py's SpecialVocab picks them from tokenizer.json,
// tokenizer_config.json and config.json (special_vocab.cpp).
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
  std::string model = "llama";  // tokenizer.ggml.model: "llama" (SentencePiece) or "gpt2" (BPE)
  std::string pre = "default";  // tokenizer.ggml.pre
  std::vector<std::string> tokens;
  std::vector<float> scores;   // SentencePiece only
  std::vector<int32_t> types;  // GGUF token types (1 normal ... 6 byte)
  std::vector<std::string> merges;  // BPE only: "a b"
  std::vector<std::pair<std::string, uint32_t>> special_ids;  // ("bos", 1), in the converter's order
  std::vector<std::pair<std::string, bool>> add_special;      // ("bos", true), ...
  std::optional<std::string> chat_template;
};

// The GGUF key of a special id type: "bos" -> tokenizer.ggml.bos_token_id, "pad" ->
// tokenizer.ggml.padding_token_id (gguf-py's names).
std::string special_id_key(const std::string& typ);

// dir/tokenizer.model, or else dir/tokenizer.json, plus the special-token files.
HfVocab read_vocab(const std::string& dir, const HfConfig& config);

// tokenizer.json's BPE vocabulary: tokens padded to config.json's vocab_size, token types,
// merges and the pre-tokenizer name (tokenizer_json.cpp).
void read_bpe_vocab(const std::string& dir, const HfConfig& config, HfVocab& v);

// SpecialVocab: special ids, add_* flags and the chat template (special_vocab.cpp).
void read_special_vocab(const std::string& dir, const HfConfig& config, HfVocab& v);

// added_tokens_decoder / added_tokens entries llama.cpp treats as control tokens even when not
// marked special ("<|...|>", "<unused...>", ...).
bool looks_special(const std::string& token);

}  // namespace imq::hf
