// Tokenizers built from a GGUF file's tokenizer.ggml.* metadata: SentencePiece-style ("llama")
// and byte-level BPE ("gpt2", pre-tokenizer chosen by tokenizer.ggml.pre). Token ids equal
// llama.cpp's (llama-tokenize) for the same text and options.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace imq {
namespace gguf { class File; }

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // add_special: prepend BOS / append EOS as the vocabulary says (tokenizer.ggml.add_bos_token...).
  // parse_special: recognise special-token text (e.g. "<|im_start|>") as those tokens.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const = 0;
  // The bytes of one token as llama.cpp's token_to_piece renders it (byte tokens -> the byte).
  virtual std::string piece(int32_t id) const = 0;
  virtual int32_t n_vocab() const = 0;
  virtual int32_t bos() const = 0;  // -1 if none
  virtual int32_t eos() const = 0;  // -1 if none
  virtual bool add_bos() const = 0;
  virtual bool is_eog(int32_t id) const = 0;  // end of generation (eos, eot, ...)
};

// Builds the tokenizer a GGUF file describes; throws imq::Error naming the file and key when
// the vocabulary is missing, malformed or of an unsupported kind.
std::unique_ptr<Tokenizer> load_tokenizer(const gguf::File& file);

}  // namespace imq
