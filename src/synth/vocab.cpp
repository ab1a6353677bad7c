// The vocabulary of synthetic models: a SentencePiece-style ("llama") vocabulary with
// <unk> <s> </s>, the 256 byte-fallback tokens, and pieces learned by a tiny BPE over a
// built-in English paragraph (then, if more are asked for, concatenations of learned pieces).
// Every piece is the concatenation of two shorter ones, so SPM's bigram merging reaches it.
#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "imq/error.h"
#include "imq/gguf.h"
#include "synth/vocab.h"

namespace imq::model {
namespace {

constexpr const char* kText =
    "Once upon a time there was a little girl who lived in a village near the forest. "
    "Whenever she went out, the little girl wore a red riding cloak, so everyone in the "
    "village called her Little Red Riding Hood. One morning she asked her mother if she could "
    "go to visit her grandmother, as it had been a while since they had seen each other. "
    "The history of the city began in the year 1066, when the king ordered the building of "
    "a castle on the hill above the river. In the following centuries the town grew into an "
    "important market, and its people were known for their wool, their bread and their songs.";

const std::string kSpace = "\xe2\x96\x81";  // U+2581, SentencePiece's space

// The paragraph as SentencePiece sees it: words with a leading U+2581, split into characters;
// merges never cross a word boundary.
std::vector<std::vector<std::string>> words(const std::string& text) {
  std::vector<std::vector<std::string>> out;
  for (char ch : text) {
    if (ch == ' ' || out.empty()) out.push_back({kSpace});
    if (ch != ' ') out.back().push_back(std::string(1, ch));
  }
  return out;
}

}  // namespace

SynthVocab make_synth_vocab(int64_t n_vocab, uint64_t seed) {
  if (n_vocab < 259 + 1)
    throw_error("synthetic vocabulary of {} tokens is too small (need at least 260)", n_vocab);
  SynthVocab v;
  auto add = [&](const std::string& piece, float score, int32_t type) {
    v.tokens.push_back(piece);
    v.scores.push_back(score);
    v.types.push_back(type);
  };
  add("<unk>", 0, 2);
  add("<s>", 0, 3);
  add("</s>", 0, 3);
  for (int b = 0; b < 256; ++b) add(fmt::format("<0x{:02X}>", b), 0, 6);

  std::set<std::string> known;
  // Single characters of the text first (score order: more frequent first).
  std::map<std::string, int> freq;
  std::vector<std::vector<std::string>> seq = words(kText);
  for (const auto& w : seq)
    for (const auto& s : w) ++freq[s];
  std::vector<std::pair<int, std::string>> chars;
  for (const auto& [s, f] : freq) chars.push_back({-f, s});
  std::sort(chars.begin(), chars.end());
  float score = -1;
  for (const auto& [f, s] : chars) {
    if (int64_t(v.tokens.size()) >= n_vocab) break;
    known.insert(s);
    add(s, score, 1);
    score -= 1;
  }
  // BPE merges over the paragraph: the most frequent adjacent pair becomes a piece.
  while (int64_t(v.tokens.size()) < n_vocab) {
    std::map<std::string, int> pairs;
    for (const auto& w : seq)
      for (size_t i = 0; i + 1 < w.size(); ++i) ++pairs[w[i] + "\x01" + w[i + 1]];
    std::string best;
    int best_n = 1;
    for (const auto& [p, n] : pairs)
      if (n > best_n) best = p, best_n = n;
    if (best.empty()) break;
    const size_t cut = best.find('\x01');
    const std::string a = best.substr(0, cut), b = best.substr(cut + 1), ab = a + b;
    for (auto& w : seq) {
      std::vector<std::string> next;
      for (size_t i = 0; i < w.size(); ++i) {
        if (i + 1 < w.size() && w[i] == a && w[i + 1] == b) {
          next.push_back(ab);
          ++i;
        } else {
          next.push_back(w[i]);
        }
      }
      w = std::move(next);
    }
    if (known.insert(ab).second) {
      add(ab, score, 1);
      score -= 1;
    }
  }
  // Fill the rest with concatenations of two known pieces, picked by a seeded generator.
  std::vector<std::string> pool(known.begin(), known.end());
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 12345;
  auto next = [&] {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    return s;
  };
  for (int64_t tries = 0; int64_t(v.tokens.size()) < n_vocab; ++tries) {
    const std::string ab = pool[next() % pool.size()] + pool[next() % pool.size()];
    if (ab.size() > 16 && tries < 100 * n_vocab) continue;
    if (!known.insert(ab).second) continue;
    pool.push_back(ab);
    add(ab, score, 1);
    score -= 1;
  }
  return v;
}

}  // namespace imq::model
