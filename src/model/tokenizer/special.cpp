#include <bitset>
#include <cstring>
#include <memory>

#include "model/tokenizer/encoders.h"

namespace imq::tok {

namespace {

bool is_c_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

// Which byte pairs occur in the text: a cheap filter so that only special tokens whose first
// two bytes occur are searched for (vocabularies can have thousands of them).
struct PairFilter {
  std::unique_ptr<std::bitset<65536>> pairs = std::make_unique<std::bitset<65536>>();
  std::bitset<256> bytes;
  explicit PairFilter(std::string_view t) {
    for (size_t i = 0; i < t.size(); ++i) {
      bytes.set(uint8_t(t[i]));
      if (i + 1 < t.size()) pairs->set(size_t(uint8_t(t[i])) << 8 | uint8_t(t[i + 1]));
    }
  }
  bool may_contain(std::string_view s) const {
    if (s.size() == 1) return bytes.test(uint8_t(s[0]));
    return pairs->test(size_t(uint8_t(s[0])) << 8 | uint8_t(s[1]));
  }
};

}  // namespace

std::vector<Fragment> split_special(const Vocab& v, std::string_view text, bool parse_special) {
  std::vector<Fragment> frags;
  if (text.empty()) return frags;
  frags.push_back({Vocab::kNone, 0, text.size()});
  if (v.special_tokens.empty()) return frags;
  const PairFilter filter(text);
  std::vector<Fragment> next;
  for (int32_t id : v.special_tokens) {
    const uint32_t attr = v.attrs[size_t(id)];
    if (!parse_special && (attr & (kAttrControl | kAttrUnknown))) continue;
    const std::string& tok = v.tokens[size_t(id)];
    if (tok.empty() || tok.size() > text.size() || !filter.may_contain(tok)) continue;
    next.clear();
    bool changed = false;
    for (const Fragment& fr : frags) {
      if (fr.token != Vocab::kNone) {
        next.push_back(fr);
        continue;
      }
      size_t off = fr.offset, len = fr.length;
      while (len > 0) {
        const void* hit = memmem(text.data() + off, len, tok.data(), tok.size());
        if (!hit) break;
        changed = true;
        const size_t match = size_t(static_cast<const char*>(hit) - text.data());
        size_t left = match - off;
        if (attr & kAttrLstrip)
          while (left > 0 && is_c_space(text[off + left - 1])) --left;
        if (left > 0) next.push_back({Vocab::kNone, off, left});
        next.push_back({id, match, tok.size()});
        size_t roff = match + tok.size();
        size_t rlen = off + len - roff;
        if (attr & kAttrRstrip)
          while (rlen > 0 && is_c_space(text[roff])) ++roff, --rlen;
        off = roff;
        len = rlen;
      }
      if (len > 0) next.push_back({Vocab::kNone, off, len});
    }
    if (changed) frags.swap(next);
  }
  return frags;
}

}  // namespace imq::tok
