#include "model/tokenizer/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "imq/error.h"
#include "model/tokenizer/unicode.h"

namespace imq::tok {

namespace {

// Unicode White_Space as the body of a PCRE2 character class.
constexpr std::string_view kWhiteSpaceClass =
    "\\t\\n\\x0B\\f\\r\\x20\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}"
    "\\x{205F}\\x{3000}";

// The categories llama.cpp recognises; a regex that names one matches on categories.
bool uses_categories(std::string_view re) {
  for (std::string_view c : {"\\p{N}", "\\p{L}", "\\p{P}", "\\p{M}", "\\p{S}"})
    if (re.find(c) != std::string_view::npos) return true;
  return false;
}

// Replaces \s and \S by the exact White_Space set (PCRE2's UCP \s also has U+180E).
std::string rewrite_white_space(std::string_view re) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < re.size(); ++i) {
    const char c = re[i];
    if (c == '\\' && i + 1 < re.size()) {
      const char e = re[++i];
      if (e == 's') {
        out += in_class ? std::string(kWhiteSpaceClass) : "[" + std::string(kWhiteSpaceClass) + "]";
      } else if (e == 'S') {
        if (in_class) throw_error("pre-tokenizer regex {}: \\S inside a class is not supported", re);
        out += "[^" + std::string(kWhiteSpaceClass) + "]";
      } else {
        out += c;
        out += e;
      }
      continue;
    }
    if (c == '[' && !in_class) in_class = true;
    else if (c == ']' && in_class) in_class = false;
    out += c;
  }
  return out;
}

size_t count_cpts(const char* p, size_t n) {
  size_t k = 0;
  for (size_t i = 0; i < n; ++i) k += (uint8_t(p[i]) & 0xC0) != 0x80;
  return k;
}

}  // namespace

struct PreTokenizer::Regex {
  pcre2_code* code = nullptr;
  bool categories = false;  // matched on the real text with UCP; else on the U+000B-spaced text
  std::string source;
  ~Regex() { pcre2_code_free(code); }
};

PreTokenizer::PreTokenizer(const std::vector<std::string>& regexes) {
  for (const std::string& src : regexes) {
    auto r = std::make_unique<Regex>();
    r->source = src;
    r->categories = uses_categories(src);
    const std::string pattern = r->categories ? rewrite_white_space(src) : src;
    uint32_t opts = PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_NO_UTF_CHECK;
    if (r->categories) opts |= PCRE2_UCP;
    int err = 0;
    PCRE2_SIZE err_off = 0;
    r->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), opts, &err, &err_off,
                            nullptr);
    if (!r->code) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      throw_error("pre-tokenizer regex {}: offset {}: {}", src, err_off, reinterpret_cast<const char*>(msg));
    }
    pcre2_jit_compile(r->code, PCRE2_JIT_COMPLETE);  // optional speed-up; interpreter otherwise
    regexes_.push_back(std::move(r));
  }
}

PreTokenizer::~PreTokenizer() = default;
PreTokenizer::PreTokenizer(PreTokenizer&&) noexcept = default;
PreTokenizer& PreTokenizer::operator=(PreTokenizer&&) noexcept = default;

std::vector<std::string> PreTokenizer::split(std::string_view text) const {
  const std::vector<uint32_t> cpts = utf8_decode(text);
  // Two subjects with per-code-point byte offsets: the valid UTF-8 of the code points, and the
  // same with non-ASCII white space replaced by U+000B.
  // PCRE2 trusts them (PCRE2_NO_UTF_CHECK) and indexes its Unicode tables by code point without
  // a range check, but the decoder lets four-byte forms up to U+1FFFFF through (as llama.cpp's
  // does): such a code point would be read past those tables. In the subjects it becomes
  // U+40000 instead, unassigned (no category, as llama.cpp's flags for it) and also four bytes
  // long, so the offsets hold; the words are then cut from the text's own code points.
  constexpr uint32_t kMaxCpt = 0x10FFFF, kStandIn = 0x40000;
  std::string real, spaced;
  std::vector<size_t> real_off(cpts.size() + 1), spaced_off(cpts.size() + 1);
  real.reserve(text.size());
  spaced.reserve(text.size());
  bool beyond = false;
  for (size_t i = 0; i < cpts.size(); ++i) {
    real_off[i] = real.size();
    spaced_off[i] = spaced.size();
    const uint32_t c = cpts[i] > kMaxCpt ? kStandIn : cpts[i];
    beyond = beyond || c != cpts[i];
    utf8_append(real, c);
    utf8_append(spaced, c >= 0x80 && is_whitespace(c) ? 0x0B : c);
  }
  real_off[cpts.size()] = real.size();
  spaced_off[cpts.size()] = spaced.size();

  std::vector<size_t> pieces = {cpts.size()};  // lengths in code points
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md_owner(
      pcre2_match_data_create(1, nullptr), &pcre2_match_data_free);
  pcre2_match_data* md = md_owner.get();
  if (!md) throw_error("pre-tokenizer: out of memory");
  {
    for (const auto& re : regexes_) {
      const std::string& subj = re->categories ? real : spaced;
      const std::vector<size_t>& off = re->categories ? real_off : spaced_off;
      std::vector<size_t> next;
      next.reserve(pieces.size());
      size_t start = 0;  // code point index of the piece
      for (size_t len : pieces) {
        const char* s = subj.data() + off[start];
        const size_t n = off[start + len] - off[start];
        size_t pos = 0, done = 0;  // byte offsets within the piece
        uint32_t flags = 0;
        while (pos <= n) {
          int rc = pcre2_match(re->code, reinterpret_cast<PCRE2_SPTR>(s), n, pos, flags | PCRE2_NO_UTF_CHECK, md,
                               nullptr);
          if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
            rc = pcre2_match(re->code, reinterpret_cast<PCRE2_SPTR>(s), n, pos,
                             flags | PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md, nullptr);
          if (rc == PCRE2_ERROR_NOMATCH) {
            if (flags == 0) break;
            // No non-empty match right after an empty one: move on by one character.
            flags = 0;
            pos += utf8_len(uint8_t(s[pos]));
            continue;
          }
          if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            throw_error("pre-tokenizer regex {}: {}", re->source, reinterpret_cast<const char*>(msg));
          }
          const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
          if (ov[0] > done) next.push_back(count_cpts(s + done, ov[0] - done));
          next.push_back(count_cpts(s + ov[0], ov[1] - ov[0]));
          done = ov[1];
          pos = ov[1];
          flags = ov[0] == ov[1] ? (PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED) : 0;
          if (ov[0] == ov[1] && pos == n) break;
        }
        if (done < n) next.push_back(count_cpts(s + done, n - done));
        start += len;
      }
      pieces = std::move(next);
    }
  }

  std::string own;  // the text's code points, where a stand-in took their place in `real`
  if (beyond) {
    own.reserve(real.size());
    for (uint32_t c : cpts) utf8_append(own, c);
  }
  const std::string& words_of = beyond ? own : real;
  std::vector<std::string> words;
  words.reserve(pieces.size());
  size_t start = 0;
  for (size_t len : pieces) {
    words.emplace_back(words_of, real_off[start], real_off[start + len] - real_off[start]);
    start += len;
  }
  return words;
}

}  // namespace imq::tok
