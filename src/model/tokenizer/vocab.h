// A tokenizer vocabulary as plain data: what the GGUF tokenizer.ggml.* keys say, plus the
// tables derived from them once (text -> id, merge ranks, special-token list, end-of-generation
// set). Tests build one by hand and call finalize_vocab().
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace imq::gguf { class File; }

namespace imq::tok {

// GGUF tokenizer.ggml.token_type values.
enum class TokenType : int32_t {
  UNDEFINED = 0, NORMAL = 1, UNKNOWN = 2, CONTROL = 3, USER_DEFINED = 4, UNUSED = 5, BYTE = 6,
};

// Token attribute bits (llama.cpp's llama_token_attr); a token type maps to one of the first
// six, lstrip/rstrip are added for some vocabularies.
enum TokenAttr : uint32_t {
  kAttrUndefined = 0,
  kAttrUnknown = 1u << 0,
  kAttrUnused = 1u << 1,
  kAttrNormal = 1u << 2,
  kAttrControl = 1u << 3,
  kAttrUserDefined = 1u << 4,
  kAttrByte = 1u << 5,
  kAttrLstrip = 1u << 7,
  kAttrRstrip = 1u << 8,
};
uint32_t attr_of_type(int32_t token_type);

enum class VocabType { SPM, BPE };  // tokenizer.ggml.model "llama" / "gpt2"

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

struct Vocab {
  static constexpr int32_t kNone = -1;

  VocabType type = VocabType::SPM;
  std::string pre;         // tokenizer.ggml.pre (BPE pre-tokenizer name), "" when absent
  std::string model_name;  // general.name (a few vocabularies get per-model token attributes)

  std::vector<std::string> tokens;  // id -> text
  std::vector<float> scores;        // id -> SPM score (0 when the file has none)
  std::vector<uint32_t> attrs;      // id -> TokenAttr bits
  std::vector<std::string> merges;  // BPE merges "left right", rank = index

  int32_t bos = kNone, eos = kNone, eot = kNone, eom = kNone, unk = kNone;
  bool add_bos = false, add_eos = false;
  bool add_space_prefix = true;  // SPM: prefix a raw-text fragment that follows BOS/special with a space
  bool ignore_merges = false;    // BPE: a pre-token that is itself a token is taken whole

  // --- derived by finalize_vocab() ---
  TokenMap token_to_id;  // text -> id; for duplicate texts the highest id
  TokenMap merge_rank;   // left + '\xff' + right -> rank (first occurrence wins)
  std::vector<int32_t> special_tokens;  // CONTROL/USER_DEFINED/UNKNOWN ids, longest text first
  std::unordered_set<int32_t> eog;      // end-of-generation ids
  // ASCII bytes that occur in no token longer than one byte: no merge can reach across them,
  // so SPM may process the text between them independently (same result, smaller heaps).
  std::array<bool, 128> isolated_ascii{};

  int32_t find(std::string_view text) const {
    auto it = token_to_id.find(text);
    return it == token_to_id.end() ? kNone : it->second;
  }
  int32_t find_merge(std::string_view left, std::string_view right) const;
  int32_t n_tokens() const { return int32_t(tokens.size()); }
};

// Fills the derived tables and applies llama.cpp's load-time fix-ups: empty token texts are
// renamed "[EMPTY_<id>]", end-of-turn-looking tokens become CONTROL and end-of-generation,
// per-model lstrip/rstrip attributes. Throws imq::Error when the arrays disagree in length.
void finalize_vocab(Vocab& v);

// Reads tokenizer.ggml.* (and general.name) from a GGUF file, with llama.cpp's defaults per
// vocabulary type and pre-tokenizer; throws imq::Error naming the file and key on bad input.
Vocab load_vocab(const gguf::File& file);

}  // namespace imq::tok
