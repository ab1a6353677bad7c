// The chunked evaluation loop shared by perplexity, KL divergence and imatrix collection.
#include <algorithm>
#include <cmath>
#include <vector>

#include "imq/error.h"
#include "imq/eval.h"

namespace imq::eval {

double NllTotals::ppl() const { return count > 0 ? std::exp(sum / double(count)) : 0.0; }

double NllTotals::error() const {
  if (count < 2) return 0.0;
  const double mean = sum / double(count);
  const double var = sum2 / double(count) - mean * mean;
  return var > 0 ? ppl() * std::sqrt(var / double(count - 1)) : 0.0;
}

int64_t chunk_count(int64_t n_tokens, const ChunkOptions& o) {
  if (o.n_ctx < 2) throw_error("context size {} is too small (need at least 2)", o.n_ctx);
  if (n_tokens < 2 * o.n_ctx)
    throw_error("{}: the text tokenizes to only {} tokens; a context of {} needs at least {}",
                o.text_name.empty() ? "the text" : o.text_name, n_tokens, o.n_ctx, 2 * o.n_ctx);
  const int64_t whole = n_tokens / o.n_ctx;
  return o.n_chunks < 0 ? whole : std::min(o.n_chunks, whole);
}

int64_t micro_batch_rows(const ChunkOptions& o, int64_t index, int64_t n_chunks) {
  if (o.n_batch <= 0 || o.n_ubatch <= 0) return 0;
  const int64_t n_seq = std::max<int64_t>(1, o.n_batch / o.n_ctx);
  const int64_t in_batch = std::min(n_seq, n_chunks - index / n_seq * n_seq);
  return in_batch > 1 ? std::max<int64_t>(1, o.n_ubatch / in_batch) : o.n_ubatch;
}

double token_nll(const float* logits, int64_t n_vocab, int32_t tok) {
  float mx = logits[0];
  for (int64_t i = 1; i < n_vocab; ++i) mx = std::max(mx, logits[i]);
  double sum_exp = 0;
  for (int64_t i = 0; i < n_vocab; ++i) sum_exp += std::exp(logits[i] - mx);
  return -(double(logits[tok] - mx) - std::log(sum_exp));
}

NllTotals perplexity(model::Session& session, std::span<const int32_t> tokens,
                     const ChunkOptions& o, const ChunkCallback& on_chunk) {
  const int64_t n_chunks = chunk_count(int64_t(tokens.size()), o);
  const int64_t n_ctx = o.n_ctx;
  const int64_t first = o.first < 0 ? n_ctx / 2 : o.first;
  if (first >= n_ctx - 1)
    throw_error("first scored position {} leaves nothing to score in a context of {}", first, n_ctx);
  if (session.options().n_ctx < n_ctx)
    throw_error("session context {} is smaller than the chunk size {}", session.options().n_ctx,
                n_ctx);
  const int64_t n_vocab = session.model().config().n_vocab;
  const int64_t logits_from = o.all_logits ? 0 : first;
  std::vector<float> logits(size_t((n_ctx - logits_from) * n_vocab));
  std::vector<int32_t> input(static_cast<size_t>(n_ctx));

  NllTotals totals;
  for (int64_t i = 0; i < n_chunks; ++i) {
    const auto chunk = tokens.subspan(size_t(i * n_ctx), size_t(n_ctx));
    input.assign(chunk.begin(), chunk.end());
    if (o.bos >= 0) input[0] = o.bos;
    session.clear();
    session.set_micro_batch(micro_batch_rows(o, i, n_chunks));
    session.decode(input, logits_from, logits);
    for (size_t at = 0; at < logits.size(); ++at)
      if (const float v = logits[at]; !std::isfinite(v)) [[unlikely]] {
        throw_error("chunk {}: logits contain {} (position {}, token {})", i + 1,
                    std::isnan(v) ? "NaN" : "Inf", logits_from + int64_t(at) / n_vocab,
                    int64_t(at) % n_vocab);
      }
    for (int64_t p = first; p < n_ctx - 1; ++p) {
      const double nll = token_nll(logits.data() + (p - logits_from) * n_vocab, n_vocab,
                                   chunk[size_t(p + 1)]);
      totals.sum += nll;
      totals.sum2 += nll * nll;
      ++totals.count;
    }
    if (on_chunk) {
      ChunkView v;
      v.index = i;
      v.n_chunks = n_chunks;
      v.n_ctx = n_ctx;
      v.tokens = chunk;
      v.logits = logits.data();
      v.logits_from = logits_from;
      v.first = first;
      v.n_vocab = n_vocab;
      v.totals = totals;
      on_chunk(v);
    }
  }
  return totals;
}

}  // namespace imq::eval
