// SentencePiece-style BPE by scores (llama.cpp's "SPM" tokenizer).
//
// Symbols form a doubly linked list over the text. Every adjacent pair whose concatenation is a
// token goes into a max-heap keyed by (token score, then leftmost position); popping a pair
// whose symbols changed since it was pushed is a no-op (their lengths no longer add up).
// A final symbol is either a merge result (always a token) or a single character; a character
// that is no token is emitted byte by byte as <0xXX> tokens.
#include <queue>

#include "imq/error.h"
#include "model/tokenizer/encoders.h"
#include "model/tokenizer/unicode.h"

namespace imq::tok {

namespace {

struct Symbol {
  int32_t prev, next;
  size_t offset, n;  // bytes of the text; n == 0 once merged into the left neighbour
};

struct Bigram {
  float score;
  int32_t left, right;
  size_t size;
  bool operator<(const Bigram& o) const {  // "lower priority than"
    return score < o.score || (score == o.score && left > o.left);
  }
};

int32_t byte_token(const Vocab& v, uint8_t byte) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  const char name[6] = {'<', '0', 'x', kHex[byte >> 4], kHex[byte & 15], '>'};
  int32_t id = v.find(std::string_view(name, 6));
  if (id == Vocab::kNone) id = v.find(std::string_view(reinterpret_cast<const char*>(&byte), 1));
  if (id == Vocab::kNone) id = v.unk;
  if (id == Vocab::kNone) throw_error("SPM vocabulary has no token for byte 0x{:02X} and no <unk>", byte);
  return id;
}

}  // namespace

namespace {

void encode_run(const Vocab& v, std::string_view text, std::vector<int32_t>& out) {
  std::vector<Symbol> sym;
  sym.reserve(text.size());
  for (size_t off = 0; off < text.size();) {
    const size_t n = std::min(utf8_len(uint8_t(text[off])), text.size() - off);
    const int32_t idx = int32_t(sym.size());
    sym.push_back({idx - 1, off + n == text.size() ? -1 : idx + 1, off, n});
    off += n;
  }
  if (sym.empty()) return;

  std::priority_queue<Bigram> queue;
  auto try_pair = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const std::string_view s = text.substr(sym[size_t(l)].offset, sym[size_t(l)].n + sym[size_t(r)].n);
    const int32_t id = v.find(s);
    if (id == Vocab::kNone) return;
    queue.push({v.scores[size_t(id)], l, r, s.size()});
  };
  for (int32_t i = 1; i < int32_t(sym.size()); ++i) try_pair(i - 1, i);

  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Symbol& l = sym[size_t(b.left)];
    Symbol& r = sym[size_t(b.right)];
    if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;  // outdated
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) sym[size_t(r.next)].prev = b.left;
    try_pair(l.prev, b.left);
    try_pair(b.left, l.next);
  }

  for (int32_t i = 0; i != -1; i = sym[size_t(i)].next) {
    const Symbol& s = sym[size_t(i)];
    const std::string_view piece = text.substr(s.offset, s.n);
    const int32_t id = v.find(piece);
    if (id != Vocab::kNone) {
      out.push_back(id);
    } else {
      for (char c : piece) out.push_back(byte_token(v, uint8_t(c)));
    }
  }
}

}  // namespace

void spm_encode(const Vocab& v, std::string_view text, std::vector<int32_t>& out) {
  // Cut after every character that is one byte no multi-byte token contains (typically
  // '\n'): no symbol can grow across it, so the runs between cuts merge independently.
  size_t start = 0;
  for (size_t i = 0; i < text.size();) {
    const uint8_t c = uint8_t(text[i]);
    const size_t n = std::min(utf8_len(c), text.size() - i);
    i += n;
    if (n == 1 && c < 128 && v.isolated_ascii[c]) {
      encode_run(v, text.substr(start, i - start), out);
      start = i;
    }
  }
  if (start < text.size()) encode_run(v, text.substr(start), out);
}

}  // namespace imq::tok
