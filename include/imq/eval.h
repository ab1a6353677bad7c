// Perplexity and KL divergence over chunks of a token stream, as llama-perplexity computes
// them (spec §i, §c.4). Written once: imatrix collection runs the same chunk loop with an
// observer attached to the session and all logits requested.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "imq/model.h"

namespace imq::eval {

struct ChunkOptions {
  int64_t n_ctx = 512;      // tokens per chunk
  int64_t n_chunks = -1;    // -1: every whole chunk the tokens hold
  int64_t first = -1;       // first scoring position (its logits predict token first+1); -1: n_ctx/2
  bool all_logits = false;  // logits for every position, so the last layer runs on all tokens
                            // (llama-imatrix); otherwise only positions >= first
  int32_t bos = -1;         // >= 0: the first token of each chunk is replaced by it for evaluation
  // llama-perplexity's batching (-b, -ub), reproduced because attention's rounding depends on
  // the micro-batch: n_batch / n_ctx chunks share a batch, whose micro-batches take
  // n_ubatch / (chunks in the batch) tokens of each (llama.cpp's split_equal). 0: each chunk
  // in micro-batches of the session's n_ubatch.
  int64_t n_batch = 0, n_ubatch = 0;
  std::string text_name;    // the text's file, named by errors about it ("" : "the text")
};

// Rows per micro-batch llama-perplexity gives chunk `index` of n_chunks (see ChunkOptions);
// 0 when o.n_batch or o.n_ubatch is 0.
int64_t micro_batch_rows(const ChunkOptions& o, int64_t index, int64_t n_chunks);

// Running totals of the negative log-likelihoods of the scored tokens.
struct NllTotals {
  double sum = 0, sum2 = 0;
  int64_t count = 0;
  double ppl() const;    // exp(mean nll)
  double error() const;  // ppl · sqrt((E[nll²] − E[nll]²) / (count − 1))
};

// What the per-chunk callback sees, after chunk `index` was evaluated and scored.
struct ChunkView {
  int64_t index = 0;                 // 0-based
  int64_t n_chunks = 0;
  int64_t n_ctx = 0;
  std::span<const int32_t> tokens;   // the chunk's tokens as given (before BOS replacement)
  const float* logits = nullptr;     // [n_ctx − logits_from, n_vocab]: row r is position logits_from + r
  int64_t logits_from = 0;
  int64_t first = 0;                 // first scoring position
  int64_t n_vocab = 0;
  NllTotals totals;                  // over all chunks so far
};
using ChunkCallback = std::function<void(const ChunkView&)>;

// Number of chunks to evaluate; throws imq::Error when there are fewer than 2·n_ctx tokens.
int64_t chunk_count(int64_t n_tokens, const ChunkOptions& o);

// Negative log-likelihood of `tok` under softmax(logits): max-subtracted, exp in float, sum in double.
double token_nll(const float* logits, int64_t n_vocab, int32_t tok);

// Evaluates chunk i = tokens[i·n_ctx, (i+1)·n_ctx) for each chunk with an empty KV cache,
// scores positions first .. n_ctx−2 against the next token, and calls on_chunk. NaN or Inf
// logits throw imq::Error naming the chunk. The session's context must hold n_ctx tokens.
NllTotals perplexity(model::Session& session, std::span<const int32_t> tokens,
                     const ChunkOptions& options, const ChunkCallback& on_chunk = {});

// --- KL divergence (llama-perplexity --kl-divergence-base / --kl-divergence) ---------------

// Writes llama.cpp's logits file: "_logits_", n_ctx, n_vocab, n_chunk, the tokens, then per
// chunk the compressed log-probabilities of positions n_ctx/2 .. n_ctx−2 (spec §i).
class LogitsFileWriter {
 public:
  LogitsFileWriter(const std::string& path, int32_t n_ctx, int32_t n_vocab,
                   std::span<const int32_t> tokens /* n_chunk·n_ctx */);
  ~LogitsFileWriter();
  void add_chunk(const ChunkView& chunk);  // needs logits from position n_ctx/2
  void commit();                            // renames the finished file into place

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A base logits file, mapped and validated.
class LogitsFile {
 public:
  static std::unique_ptr<LogitsFile> open(const std::string& path);
  // The base logits of `session` over `tokens` (whole chunks of options.n_ctx, at most
  // options.n_chunks), in memory and in the file's layout: what --kl-divergence-base would
  // write, for comparing with kl_divergence() without a file.
  static std::unique_ptr<LogitsFile> compute(model::Session& session, std::span<const int32_t> tokens,
                                             const ChunkOptions& options);
  ~LogitsFile();
  int32_t n_ctx() const;
  int32_t n_vocab() const;
  int32_t n_chunk() const;
  std::span<const int32_t> tokens() const;  // n_chunk·n_ctx
  // Chunk i's records: (n_ctx − 1 − n_ctx/2) × (2·ceil(n_vocab/2) + 4) uint16.
  const uint16_t* chunk(int32_t i) const;

 private:
  LogitsFile();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct KldTotals {
  int64_t count = 0, n_same_top = 0;
  double sum_nll = 0, sum_nll2 = 0, sum_nll_base = 0, sum_nll_base2 = 0, sum_nll_nll_base = 0;
  double sum_kld = 0, sum_kld2 = 0, sum_p_diff = 0, sum_p_diff2 = 0, sum_p_diff4 = 0;
};
struct KldResult {
  KldTotals totals;
  std::vector<float> kld;     // per scored token
  std::vector<float> p_diff;  // per scored token: p_q(tok) − p_base(tok)
};
using KldCallback = std::function<void(int64_t chunk_index, const KldResult& so_far)>;

// Evaluates the base file's chunks (min(n_chunks, file's) of them, with its n_ctx) and compares
// with its log-probabilities. options.n_ctx must not be smaller than the file's (0: the file's).
KldResult kl_divergence(model::Session& session, const LogitsFile& base, const ChunkOptions& options,
                        const KldCallback& on_chunk = {});

// llama-perplexity's table header, per-chunk line and final statistics block.
std::string kld_table_header();
std::string kld_chunk_line(int64_t chunk_index, const KldTotals& t);
std::string kld_report(const KldResult& r);  // empty when fewer than 100 tokens were scored

// --- text generation ------------------------------------------------------------------------

struct SamplingOptions {
  float temp = 0.8f;    // <= 0: greedy (argmax, first maximum)
  int top_k = 40;       // <= 0: all tokens
  float top_p = 0.95f;  // >= 1: no nucleus cut
  uint64_t seed = 0;
};

// Picks the next token from one row of logits: greedy, or top-k, then temperature softmax,
// then top-p, then a draw from a generator seeded once.
class Sampler {
 public:
  explicit Sampler(const SamplingOptions& options);
  int32_t sample(std::span<const float> logits);

 private:
  SamplingOptions o_;
  uint64_t state_;
  std::vector<std::pair<float, int32_t>> cand_;
};

struct GenerateOptions {
  int64_t n_predict = 128;           // tokens to generate (< 0: until end of generation)
  SamplingOptions sampling;
  std::vector<int32_t> banned;       // never sampled (llama.cpp --ignore-eos bans EOS)
  std::function<bool(int32_t)> is_eog;  // stops generation (after being reported)
};

// Evaluates the prompt, then samples and evaluates one token at a time; on_token(id) is
// called for each generated token and may return false to stop. Returns the generated ids.
std::vector<int32_t> generate(model::Session& session, std::span<const int32_t> prompt,
                              const GenerateOptions& options,
                              const std::function<bool(int32_t)>& on_token = {});

}  // namespace imq::eval
