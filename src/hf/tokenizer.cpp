// SentencePiece protobuf reader and the vocabulary rules of llama.cpp's converter.
#include "hf/tokenizer.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/mapped_file.h"
#include "hf/config.h"
#include "hf/json_error.h"
#include "imq/error.h"

namespace imq::hf {

namespace {

using nlohmann::json;

// GGUF token types (and SentencePiece's, which use the same numbers).
constexpr int32_t kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6;

// A bounds-checked protobuf wire-format cursor.
class Proto {
 public:
  Proto(std::span<const uint8_t> b, uint64_t base, const std::string& path) : b_(b), base_(base), path_(path) {}
  bool done() const { return pos_ == b_.size(); }
  uint64_t offset() const { return base_ + pos_; }

  uint64_t varint(const char* what) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= b_.size()) fail(fmt::format("truncated {} (varint)", what));
      const uint8_t c = b_[pos_++];
      v |= uint64_t(c & 0x7f) << shift;
      if (!(c & 0x80)) return v;
    }
    fail(fmt::format("{}: varint longer than 10 bytes", what));
  }
  std::span<const uint8_t> bytes(uint64_t n, const char* what) {
    if (n > b_.size() - pos_)
      fail(fmt::format("{} of {} bytes runs past the end of its message ({} bytes left)", what, n, b_.size() - pos_));
    auto s = b_.subspan(pos_, size_t(n));
    pos_ += n;
    return s;
  }
  // Skips a field of wire type `wt` (groups, wire types 3 and 4, are not used by SentencePiece).
  void skip(uint32_t wt, uint64_t field) {
    switch (wt) {
      case 0: varint("field"); break;
      case 1: bytes(8, "fixed64 field"); break;
      case 2: bytes(varint("length"), "length-delimited field"); break;
      case 5: bytes(4, "fixed32 field"); break;
      default: fail(fmt::format("field {} has invalid wire type {}", field, wt));
    }
  }
  [[noreturn]] void fail(const std::string& msg) const {
    throw_error("{}: offset {}: {} (not a SentencePiece model?)", path_, offset(), msg);
  }

 private:
  std::span<const uint8_t> b_;
  uint64_t base_;
  size_t pos_ = 0;
  const std::string& path_;
};

SpPiece parse_piece(Proto& p) {
  SpPiece sp;
  bool has_piece = false;
  while (!p.done()) {
    const uint64_t tag = p.varint("tag");
    const uint32_t wt = uint32_t(tag & 7);
    const uint64_t field = tag >> 3;
    if (field == 1 && wt == 2) {
      auto s = p.bytes(p.varint("piece length"), "piece");
      sp.piece.assign(reinterpret_cast<const char*>(s.data()), s.size());
      has_piece = true;
    } else if (field == 2 && wt == 5) {
      auto s = p.bytes(4, "score");
      std::memcpy(&sp.score, s.data(), 4);
    } else if (field == 3 && wt == 0) {
      const uint64_t t = p.varint("type");
      if (t < 1 || t > 6) p.fail(fmt::format("piece type {} is not one of 1..6", t));
      sp.type = int32_t(t);
    } else if (field >= 1 && field <= 3) {
      p.fail(fmt::format("field {} of a piece has wire type {}", field, wt));
    } else {
      p.skip(wt, field);
    }
  }
  if (!has_piece || sp.piece.empty()) p.fail("a piece has no text");
  return sp;
}

std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json read_json(const std::filesystem::path& p) {
  try {
    return json::parse(read_text(p));
  } catch (const json::exception& e) {
    throw_error("{}: not valid JSON ({})", p.string(), json_error(e));
  }
}

}  // namespace

std::vector<SpPiece> parse_sentencepiece(std::span<const uint8_t> bytes, const std::string& path) {
  Proto p(bytes, 0, path);
  std::vector<SpPiece> pieces;
  std::set<std::string> seen;
  while (!p.done()) {
    const uint64_t tag = p.varint("tag");
    const uint32_t wt = uint32_t(tag & 7);
    if ((tag >> 3) == 1) {
      if (wt != 2) p.fail(fmt::format("pieces field has wire type {}, expected 2", wt));
      const uint64_t len = p.varint("piece message length");
      const uint64_t at = p.offset();
      Proto sub(p.bytes(len, "piece message"), at, path);
      SpPiece sp = parse_piece(sub);
      if (!seen.insert(sp.piece).second)
        throw_error("{}: offset {}: piece {} (id {}) is defined twice", path, at, sp.piece, pieces.size());
      if (sp.type == kByte && !(sp.piece.size() == 6 && sp.piece.rfind("<0x", 0) == 0 && sp.piece[5] == '>'))
        throw_error("{}: offset {}: byte piece {} (id {}) is not of the form <0xXX>", path, at, sp.piece,
                    pieces.size());
      pieces.push_back(std::move(sp));
    } else {
      p.skip(wt, tag >> 3);
    }
  }
  if (pieces.empty()) throw_error("{}: no pieces (not a SentencePiece model?)", path);
  return pieces;
}

namespace {

// tokenizer.model with added_tokens.json and tokenizer_config.json's added_tokens_decoder, as
// the converter's _create_vocab_sentencepiece reads them.
void read_spm_vocab(const std::string& dir, const HfConfig& config, HfVocab& v) {
  namespace fs = std::filesystem;
  const fs::path model = fs::path(dir) / "tokenizer.model";
  MappedFile mf(model.string());
  const std::vector<SpPiece> pieces = parse_sentencepiece(mf.bytes(), model.string());

  // The vocabulary has config.json's vocab_size entries; ids past the SentencePiece model are
  // padding ([PADn], unused), as the converter writes them.
  const size_t n_vocab = size_t(config.vocab_size);
  if (pieces.size() > n_vocab)
    throw_error("{}: {} pieces, more than config.json's vocab_size {}", model.string(), pieces.size(), n_vocab);
  v.model = "llama";
  v.pre = "default";
  v.tokens.resize(n_vocab);
  v.scores.assign(n_vocab, -10000.0f);
  v.types.assign(n_vocab, kUnused);
  for (size_t i = 0; i < n_vocab; ++i) v.tokens[i] = "[PAD" + std::to_string(i) + "]";
  for (size_t i = 0; i < pieces.size(); ++i) {
    v.tokens[i] = pieces[i].piece;
    v.scores[i] = pieces[i].score;
    const int32_t t = pieces[i].type;
    // The converter asks SentencePiece is_unknown / is_control / is_unused / is_byte; every
    // other piece (user-defined ones included) is written as normal.
    v.types[i] = (t == kUnknown || t == kControl || t == kUnused || t == kByte) ? t : kNormal;
  }

  const fs::path added = fs::path(dir) / "added_tokens.json";
  if (fs::exists(added)) {
    const json j = read_json(added);
    if (!j.is_object()) throw_error("{}: not a JSON object of token -> id", added.string());
    for (const auto& [text, id] : j.items()) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0)
        throw_error("{}: token {}: id {} is not a non-negative integer", added.string(), text, id.dump());
      const size_t i = size_t(id.get<int64_t>());
      if (i >= n_vocab) continue;  // the converter skips ids past the vocabulary
      v.tokens[i] = text;
      v.scores[i] = -1000.0f;
      v.types[i] = kUserDefined;
    }
  }

  const fs::path tc_path = fs::path(dir) / "tokenizer_config.json";
  if (!fs::exists(tc_path)) return;
  const json tc = read_json(tc_path);
  if (!tc.is_object()) throw_error("{}: not a JSON object", tc_path.string());
  if (!tc.contains("added_tokens_decoder")) return;
  const json& atd = tc["added_tokens_decoder"];
  if (!atd.is_object()) throw_error("{}: added_tokens_decoder is not an object", tc_path.string());
  for (const auto& [key, data] : atd.items()) {
    size_t i = 0;
    try {
      size_t used = 0;
      i = size_t(std::stoull(key, &used));
      if (used != key.size()) throw std::invalid_argument(key);
    } catch (const std::exception&) {
      throw_error("{}: added_tokens_decoder key \"{}\" is not a token id", tc_path.string(), key);
    }
    if (!data.is_object() || !data.contains("content") || !data["content"].is_string())
      throw_error("{}: added_tokens_decoder {}: missing \"content\"", tc_path.string(), key);
    if (i >= n_vocab)
      throw_error("{}: added_tokens_decoder id {} is past vocab_size {}", tc_path.string(), i, n_vocab);
    std::string text = data["content"].get<std::string>();
    const bool special = data.contains("special") && data["special"].is_boolean() && data["special"].get<bool>();
    if (special || looks_special(text)) {
      v.types[i] = kControl;
    } else {
      for (size_t p; (p = text.find("\xe2\x96\x81")) != std::string::npos;) text.replace(p, 3, " ");
      v.types[i] = kUserDefined;
    }
    v.scores[i] = -1000.0f;
    v.tokens[i] = text;
  }
}

}  // namespace

HfVocab read_vocab(const std::string& dir, const HfConfig& config) {
  namespace fs = std::filesystem;
  HfVocab v;
  if (fs::exists(fs::path(dir) / "tokenizer.model")) {
    read_spm_vocab(dir, config, v);
  } else if (fs::exists(fs::path(dir) / "tokenizer.json")) {
    // The converter cuts gemma3's embedding rows to a tokenizer.json's count; not done here.
    if (config.arch == HfArch::Gemma3)
      throw_error("{}: missing (gemma3 folders need their SentencePiece tokenizer.model)",
                  (fs::path(dir) / "tokenizer.model").string());
    read_bpe_vocab(dir, config, v);
  } else {
    throw_error("{}: missing (an HF model folder needs a SentencePiece tokenizer.model or a BPE tokenizer.json)",
                (fs::path(dir) / "tokenizer.model").string());
  }
  read_special_vocab(dir, config, v);
  return v;
}

}  // namespace imq::hf
