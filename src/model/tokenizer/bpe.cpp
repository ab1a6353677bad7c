// Byte-level BPE by merge rank (GPT-2 style), one pre-token at a time.
//
// Same linked-list-plus-heap scheme as spm.cpp, keyed by (merge rank, then leftmost position);
// a popped pair is outdated when its symbols are no longer adjacent with the lengths it saw.
#include <queue>

#include "model/tokenizer/encoders.h"
#include "model/tokenizer/unicode.h"

namespace imq::tok {

namespace {

struct Symbol {
  int32_t prev, next;
  size_t offset, n;
};

struct Bigram {
  int32_t rank;
  int32_t left, right;
  size_t size;
  bool operator<(const Bigram& o) const {  // "lower priority than": higher rank, then further right
    return rank > o.rank || (rank == o.rank && left > o.left);
  }
};

}  // namespace

void bpe_encode_word(const Vocab& v, std::string_view word, std::vector<int32_t>& out) {
  if (word.empty()) return;
  if (v.ignore_merges) {
    if (const int32_t id = v.find(word); id != Vocab::kNone) {
      out.push_back(id);
      return;
    }
  }
  std::vector<Symbol> sym;
  sym.reserve(word.size());
  for (size_t off = 0; off < word.size();) {
    const size_t n = std::min(utf8_len(uint8_t(word[off])), word.size() - off);
    const int32_t idx = int32_t(sym.size());
    sym.push_back({idx - 1, off + n == word.size() ? -1 : idx + 1, off, n});
    off += n;
  }

  std::priority_queue<Bigram> queue;
  auto try_pair = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const Symbol& a = sym[size_t(l)];
    const Symbol& b = sym[size_t(r)];
    const int32_t rank = v.find_merge(word.substr(a.offset, a.n), word.substr(b.offset, b.n));
    if (rank == Vocab::kNone) return;
    queue.push({rank, l, r, a.n + b.n});
  };
  for (int32_t i = 1; i < int32_t(sym.size()); ++i) try_pair(i - 1, i);

  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Symbol& l = sym[size_t(b.left)];
    Symbol& r = sym[size_t(b.right)];
    if (l.n == 0 || r.n == 0 || l.next != b.right || l.n + r.n != b.size) continue;  // outdated
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) sym[size_t(r.next)].prev = b.left;
    try_pair(l.prev, b.left);
    try_pair(b.left, l.next);
  }

  for (int32_t i = 0; i != -1; i = sym[size_t(i)].next) {
    const Symbol& s = sym[size_t(i)];
    const std::string_view piece = word.substr(s.offset, s.n);
    if (const int32_t id = v.find(piece); id != Vocab::kNone) {
      out.push_back(id);
      continue;
    }
    for (size_t k = 0; k < piece.size(); ++k)  // llama.cpp's fallback: single bytes that are tokens
      if (const int32_t id = v.find(piece.substr(k, 1)); id != Vocab::kNone) out.push_back(id);
  }
}

}  // namespace imq::tok
