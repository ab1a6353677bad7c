#include "model/tokenizer/vocab.h"

#include <algorithm>
#include <cctype>

#include "imq/error.h"

namespace imq::tok {

uint32_t attr_of_type(int32_t token_type) {
  switch (TokenType(token_type)) {
    case TokenType::NORMAL: return kAttrNormal;
    case TokenType::UNKNOWN: return kAttrUnknown;
    case TokenType::CONTROL: return kAttrControl;
    case TokenType::USER_DEFINED: return kAttrUserDefined;
    case TokenType::UNUSED: return kAttrUnused;
    case TokenType::BYTE: return kAttrByte;
    default: return kAttrUndefined;
  }
}

int32_t Vocab::find_merge(std::string_view left, std::string_view right) const {
  // 0xFF never occurs in UTF-8, so the joined key is unambiguous for byte-level tokens.
  std::string key;
  key.reserve(left.size() + right.size() + 1);
  key.append(left);
  key += '\xff';
  key.append(right);
  auto it = merge_rank.find(key);
  return it == merge_rank.end() ? kNone : it->second;
}

namespace {

// Token texts that llama.cpp treats as end of generation (and forces to CONTROL).
bool is_eog_text(std::string_view t) {
  static constexpr std::string_view kEog[] = {
      "<|eot_id|>", "<|im_end|>", "<|end|>",       "<|return|>",      "<|call|>",
      "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>", "_<EOT>",
      "<|end_of_text|>", "<end_of_utterance>",
  };
  return std::find(std::begin(kEog), std::end(kEog), t) != std::end(kEog);
}

bool is_eot_text(std::string_view t) {
  static constexpr std::string_view kEot[] = {
      "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>", "_<EOT>",
      "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",  // DeepSeek
      "<end_of_utterance>",
  };
  return std::find(std::begin(kEot), std::end(kEot), t) != std::end(kEot);
}

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(uint8_t(c)));
  return s;
}

}  // namespace

void finalize_vocab(Vocab& v) {
  const size_t n = v.tokens.size();
  if (v.scores.empty()) v.scores.assign(n, 0.0f);
  if (v.attrs.empty()) v.attrs.assign(n, kAttrNormal);
  if (v.scores.size() != n || v.attrs.size() != n)
    throw_error("vocabulary: {} tokens but {} scores and {} token types", n, v.scores.size(), v.attrs.size());

  v.token_to_id.clear();
  v.token_to_id.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (v.tokens[i].empty()) v.tokens[i] = "[EMPTY_" + std::to_string(i) + "]";
    v.token_to_id[v.tokens[i]] = int32_t(i);
  }

  v.merge_rank.clear();
  v.merge_rank.reserve(v.merges.size());
  for (size_t i = 0; i < v.merges.size(); ++i) {
    const std::string& m = v.merges[i];
    const size_t pos = m.find(' ', 1);  // a leading space belongs to the left part
    if (pos == std::string::npos) continue;  // no second part: can never match
    v.merge_rank.try_emplace(m.substr(0, pos) + '\xff' + m.substr(pos + 1), int32_t(i));
  }

  // End of turn / generation, recognised by text in id order (llama.cpp walks its hash map;
  // only which id becomes `eot` can differ, the end-of-generation set is the same).
  for (size_t i = 0; i < n; ++i) {
    const std::string& t = v.tokens[i];
    if (v.token_to_id.at(t) != int32_t(i)) continue;
    if (v.eot == Vocab::kNone && is_eot_text(t)) {
      v.eot = int32_t(i);
      if (!(v.attrs[i] & kAttrControl)) v.attrs[i] = kAttrControl;
    }
    if (v.eom == Vocab::kNone && t == "<|eom_id|>") {
      v.eom = int32_t(i);
      if (!(v.attrs[i] & kAttrControl)) v.attrs[i] = kAttrControl;
    }
  }
  v.eog.clear();
  for (size_t i = 0; i < n; ++i) {
    const std::string& t = v.tokens[i];
    if (v.token_to_id.at(t) != int32_t(i) || !is_eog_text(t)) continue;
    v.eog.insert(int32_t(i));
    if (!(v.attrs[i] & kAttrControl)) v.attrs[i] = kAttrControl;
  }
  for (int32_t id : {v.eos, v.eot, v.eom})
    if (id != Vocab::kNone) v.eog.insert(id);

  v.isolated_ascii.fill(true);
  for (const std::string& t : v.tokens)
    if (t.size() > 1)
      for (char c : t)
        if (uint8_t(c) < 128) v.isolated_ascii[uint8_t(c)] = false;

  v.special_tokens.clear();
  for (size_t i = 0; i < n; ++i)
    if (v.attrs[i] & (kAttrControl | kAttrUserDefined | kAttrUnknown)) v.special_tokens.push_back(int32_t(i));
  std::stable_sort(v.special_tokens.begin(), v.special_tokens.end(), [&](int32_t a, int32_t b) {
    return v.tokens[size_t(a)].size() > v.tokens[size_t(b)].size();
  });

  // Phi-3 files: special tokens swallow the whitespace after them, except <unk>, <s> and
  // <|endoftext|>; </s> does too.
  const std::string name = lower(v.model_name);
  if (name.find("phi-3") != std::string::npos || name.find("phi3") != std::string::npos) {
    for (int32_t id : v.special_tokens) v.attrs[size_t(id)] |= kAttrRstrip;
    auto set_rstrip = [&](std::string_view text, bool on) {
      const int32_t id = v.find(text);
      if (id == Vocab::kNone) return;
      if (on) v.attrs[size_t(id)] |= kAttrRstrip;
      else v.attrs[size_t(id)] &= ~uint32_t(kAttrRstrip);
    };
    set_rstrip("</s>", true);
    for (auto t : {"<unk>", "<s>", "<|endoftext|>"}) set_rstrip(t, false);
  }
}

}  // namespace imq::tok
