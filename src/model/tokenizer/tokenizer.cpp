// imq::Tokenizer over a Vocab: special-token splitting, then SPM or byte-level BPE on each raw
// fragment, with BOS/EOS as the vocabulary asks.
#include "imq/tokenizer.h"

#include <cstdlib>
#include <optional>
#include <unordered_map>

#include "imq/error.h"
#include "imq/gguf.h"
#include "model/tokenizer/encoders.h"
#include "model/tokenizer/pretokenizer.h"
#include "model/tokenizer/tokenizer_impl.h"
#include "model/tokenizer/unicode.h"

namespace imq::tok {

VocabTokenizer::VocabTokenizer(Vocab vocab) : v_(std::move(vocab)) {
  if (v_.type == VocabType::BPE) pre_.emplace(pre_tokenizer_spec(v_.pre).regexes);
}

VocabTokenizer::~VocabTokenizer() = default;

std::vector<int32_t> VocabTokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  std::vector<int32_t> out;
  const bool bos = add_special && v_.add_bos;
  const bool eos = add_special && v_.add_eos;
  if (bos && v_.bos == Vocab::kNone) throw_error("tokenizer: the vocabulary adds BOS but has no BOS token");
  if (eos && v_.eos == Vocab::kNone) throw_error("tokenizer: the vocabulary adds EOS but has no EOS token");
  if (bos) out.push_back(v_.bos);

  const std::vector<Fragment> frags = split_special(v_, text, parse_special);
  if (v_.type == VocabType::SPM) {
    bool prev_special = true;  // the first fragment gets the space prefix too
    std::string buf;
    for (const Fragment& f : frags) {
      if (f.token != Vocab::kNone) {
        out.push_back(f.token);
        prev_special = true;
        continue;
      }
      buf.clear();
      if (v_.add_space_prefix && prev_special) buf = "\xe2\x96\x81";
      for (char c : text.substr(f.offset, f.length)) {
        if (c == ' ') buf += "\xe2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK
        else buf += c;
      }
      spm_encode(v_, buf, out);
      prev_special = false;
    }
  } else {
    // Pre-tokens repeat a lot in running text: encode each distinct one once per call.
    std::unordered_map<std::string, std::vector<int32_t>> cache;
    std::vector<int32_t> ids;
    for (const Fragment& f : frags) {
      if (f.token != Vocab::kNone) {
        out.push_back(f.token);
        continue;
      }
      for (const std::string& word : pre_->split(text.substr(f.offset, f.length))) {
        auto [it, fresh] = cache.try_emplace(word);
        if (fresh) bpe_encode_word(v_, gpt2_encode(word), it->second);
        out.insert(out.end(), it->second.begin(), it->second.end());
      }
    }
  }
  if (eos) out.push_back(v_.eos);
  return out;
}

std::string VocabTokenizer::piece(int32_t id) const {
  if (id < 0 || id >= v_.n_tokens()) throw_error("tokenizer: token id {} out of range [0, {})", id, v_.n_tokens());
  const std::string& text = v_.tokens[size_t(id)];
  const uint32_t attr = v_.attrs[size_t(id)];
  if (attr & (kAttrUnknown | kAttrControl | kAttrUserDefined)) return text;
  if (v_.type == VocabType::SPM) {
    if (attr & kAttrNormal) {
      std::string s;
      for (size_t i = 0; i < text.size(); ++i) {
        if (text.compare(i, 3, "\xe2\x96\x81") == 0) {
          s += ' ';
          i += 2;
        } else {
          s += text[i];
        }
      }
      return s;
    }
    if (attr & kAttrByte) {  // "<0xXX>"
      const std::string hex = text.size() >= 5 ? text.substr(3, 2) : std::string();
      return std::string(1, char(std::strtol(hex.c_str(), nullptr, 16)));
    }
    return {};
  }
  if (!(attr & kAttrNormal)) return {};
  std::string s;
  for (uint32_t cpt : utf8_decode(text)) {
    const int b = gpt2_cpt_to_byte(cpt);
    if (b >= 0) {
      s += char(b);
    } else {  // llama.cpp's marker for a character outside the byte alphabet
      std::string u;
      utf8_append(u, cpt);
      s += "[UNK_BYTE_0x";
      for (char c : u) s += fmt::format("{:02x}", uint8_t(c));
      s += text + "]";
    }
  }
  return s;
}

bool VocabTokenizer::is_eog(int32_t id) const { return v_.eog.count(id) != 0; }

}  // namespace imq::tok

namespace imq {

std::unique_ptr<Tokenizer> load_tokenizer(const gguf::File& file) {
  tok::Vocab v = tok::load_vocab(file);
  try {
    return std::make_unique<tok::VocabTokenizer>(std::move(v));
  } catch (const Error& e) {
    throw_error("{}: {}", file.path(), e.what());
  }
}

}  // namespace imq
