// Byte-level BPE pre-tokenization: the regex list a tokenizer.ggml.pre name selects, applied
// the way llama.cpp applies it. Each regex splits every piece left by the previous one into
// its matches and the unmatched stretches between them; nothing is ever dropped.
//
// Matching semantics reproduced (llama.cpp runs std::regex on transformed text):
//  * regexes with \p{L} \p{N} \p{P} \p{S} \p{M} see Unicode categories; \s is Unicode
//    White_Space (PCRE2 UTF+UCP, \s/\S rewritten to that exact set);
//  * regexes without them see non-ASCII white space as U+000B and \s as ASCII white space;
//  * `$` matches only at the end of the piece; lookarounds never see past the piece.
// Invalid UTF-8 input bytes become U+FFFD.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace imq::tok {

struct PreTokenizerSpec {
  std::vector<std::string> regexes;
  bool ignore_merges = false;  // llama3-style: a pre-token that is a token is not merged
  bool add_bos = false;        // default for tokenizer.ggml.add_bos_token when the key is absent
  bool no_bos = false;         // the vocabulary has no BOS token (chatglm)
};

// The pre-tokenizer llama.cpp associates with a tokenizer.ggml.pre value ("" = "default");
// throws imq::Error for a name it does not know.
PreTokenizerSpec pre_tokenizer_spec(std::string_view pre);

class PreTokenizer {
 public:
  explicit PreTokenizer(const std::vector<std::string>& regexes);
  ~PreTokenizer();
  PreTokenizer(PreTokenizer&&) noexcept;
  PreTokenizer& operator=(PreTokenizer&&) noexcept;

  // The pieces of `text` in order, as UTF-8 (not yet byte-level encoded); thread-safe.
  std::vector<std::string> split(std::string_view text) const;

 private:
  struct Regex;
  std::vector<std::unique_ptr<Regex>> regexes_;
};

}  // namespace imq::tok
