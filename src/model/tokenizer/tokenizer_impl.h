// The Tokenizer implementation over a Vocab (exposed for tests that build vocabularies by hand).
#pragma once
#include <optional>

#include "imq/tokenizer.h"
#include "model/tokenizer/pretokenizer.h"
#include "model/tokenizer/vocab.h"

namespace imq::tok {

class VocabTokenizer final : public Tokenizer {
 public:
  // `vocab` must have been through finalize_vocab(); throws imq::Error for an unknown
  // BPE pre-tokenizer.
  explicit VocabTokenizer(Vocab vocab);
  ~VocabTokenizer() override;

  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const override;
  std::string piece(int32_t id) const override;
  int32_t n_vocab() const override { return v_.n_tokens(); }
  int32_t bos() const override { return v_.bos; }
  int32_t eos() const override { return v_.eos; }
  bool add_bos() const override { return v_.add_bos; }
  bool is_eog(int32_t id) const override;

  const Vocab& vocab() const { return v_; }

 private:
  Vocab v_;
  std::optional<PreTokenizer> pre_;  // BPE only
};

}  // namespace imq::tok
