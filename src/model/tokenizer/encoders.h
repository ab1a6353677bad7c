// The pieces of encoding: special-token splitting, SentencePiece merging, byte-level BPE.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "model/tokenizer/vocab.h"

namespace imq::tok {

// A stretch of the input: raw text [offset, offset+length), or one special token.
struct Fragment {
  int32_t token = Vocab::kNone;  // kNone: raw text
  size_t offset = 0, length = 0;
};

// Splits `text` at occurrences of special-token texts, longest tokens first, each token
// splitting every raw fragment left by the longer ones at all its non-overlapping occurrences
// (leftmost first). USER_DEFINED tokens always split; CONTROL and UNKNOWN ones only when
// parse_special. A token with lstrip/rstrip also removes the white space before/after it.
std::vector<Fragment> split_special(const Vocab& v, std::string_view text, bool parse_special);

// SentencePiece: `text` is already escaped (' ' -> U+2581). Starting from UTF-8 characters,
// repeatedly merges the adjacent pair whose concatenation is the token with the highest score
// (ties: leftmost); pieces that are not tokens are emitted as <0xXX> byte tokens.
void spm_encode(const Vocab& v, std::string_view text, std::vector<int32_t>& out);

// Byte-level BPE of one pre-token (already GPT-2 byte encoded): starting from its characters,
// repeatedly merges the adjacent pair with the lowest merge rank (ties: leftmost). A final
// piece that is not a token is emitted as the tokens of its single bytes, where they exist.
void bpe_encode_word(const Vocab& v, std::string_view word, std::vector<int32_t>& out);

}  // namespace imq::tok
