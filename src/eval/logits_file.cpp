// llama-perplexity's --kl-divergence-base file (spec §i):
//
//   "_logits_" | i32 n_ctx | i32 n_vocab | i32 n_chunk | i32 tokens[n_chunk*n_ctx]
//   per chunk, per position p = n_ctx/2 .. n_ctx-2, one record of nv = 2*ceil(n_vocab/2)+4 u16:
//     f32 scale | f32 min_log_prob | u16 q[n_vocab] (+1 zero pad when n_vocab is odd)
//   decoded log p_i = scale*q_i + min_log_prob; q_i = 0 at or below max-16.
#include <cmath>
#include <cstring>
#include <optional>
#include <vector>

#include "core/atomic_file.h"
#include "core/checked.h"
#include "core/mapped_file.h"
#include "imq/error.h"
#include "imq/eval.h"

namespace imq::eval {
namespace {

constexpr char kMagic[8] = {'_', 'l', 'o', 'g', 'i', 't', 's', '_'};

int64_t record_u16(int64_t n_vocab) { return 2 * ((n_vocab + 1) / 2) + 4; }
int64_t records_per_chunk(int64_t n_ctx) { return n_ctx - 1 - n_ctx / 2; }

// One position's compressed log-probabilities.
void compress(const float* logits, int64_t n_vocab, uint16_t* out) {
  float mx = logits[0], mn = logits[0];
  for (int64_t i = 1; i < n_vocab; ++i) {
    mx = std::max(mx, logits[i]);
    mn = std::min(mn, logits[i]);
  }
  mn = std::max(mn, mx - 16);
  double sum_exp = 0;
  for (int64_t i = 0; i < n_vocab; ++i) sum_exp += std::exp(logits[i] - mx);
  const float log_sum_exp = float(std::log(sum_exp));
  const float min_log_prob = mn - mx - log_sum_exp;
  const float scale = (mx - mn) / 65535.0f;
  std::memcpy(out, &scale, 4);
  std::memcpy(out + 2, &min_log_prob, 4);
  uint16_t* q = out + 4;
  if (scale != 0.0f) {
    const float inv = 1 / scale;
    for (int64_t i = 0; i < n_vocab; ++i)
      q[i] = logits[i] > mn ? uint16_t(std::lrint(inv * (logits[i] - mn))) : 0;
  } else {
    std::memset(q, 0, size_t(n_vocab) * 2);
  }
  if (n_vocab % 2) q[n_vocab] = 0;
}

// The records of chunk c (positions n_ctx/2 .. n_ctx-2) into out.
void compress_chunk(const ChunkView& c, int64_t n_ctx, int64_t n_vocab, uint16_t* out) {
  const int64_t first = n_ctx / 2, nv = record_u16(n_vocab);
  for (int64_t p = first; p < n_ctx - 1; ++p)
    compress(c.logits + (p - c.logits_from) * n_vocab, n_vocab, out + (p - first) * nv);
}

}  // namespace

struct LogitsFileWriter::Impl {
  Impl(const std::string& path, int64_t c, int64_t v) : file(path), n_ctx(c), n_vocab(v) {}
  AtomicFile file;
  int64_t n_ctx, n_vocab;
  std::vector<uint16_t> buf;
};

LogitsFileWriter::LogitsFileWriter(const std::string& path, int32_t n_ctx, int32_t n_vocab,
                                   std::span<const int32_t> tokens)
    : impl_(std::make_unique<Impl>(path, n_ctx, n_vocab)) {
  if (n_ctx <= 0 || tokens.size() % size_t(n_ctx) != 0)
    throw_error("{}: {} tokens are not whole chunks of {}", path, tokens.size(), n_ctx);
  const int32_t n_chunk = int32_t(tokens.size() / size_t(n_ctx));
  impl_->file.write(kMagic, 8);
  impl_->file.write(&n_ctx, 4);
  impl_->file.write(&n_vocab, 4);
  impl_->file.write(&n_chunk, 4);
  impl_->file.write(tokens.data(), tokens.size() * 4);
  impl_->buf.resize(size_t(records_per_chunk(n_ctx) * record_u16(n_vocab)));
}

LogitsFileWriter::~LogitsFileWriter() = default;

void LogitsFileWriter::add_chunk(const ChunkView& c) {
  Impl& s = *impl_;
  if (c.n_ctx != s.n_ctx || c.n_vocab != s.n_vocab || c.logits_from > s.n_ctx / 2)
    throw_error("{}: chunk does not match the file (n_ctx {}, n_vocab {}, logits from {})",
                s.file.path(), c.n_ctx, c.n_vocab, c.logits_from);
  compress_chunk(c, s.n_ctx, s.n_vocab, s.buf.data());
  s.file.write(s.buf.data(), s.buf.size() * 2);
}

void LogitsFileWriter::commit() { impl_->file.commit(); }

struct LogitsFile::Impl {
  std::optional<MappedFile> map;  // a file (open) ...
  std::vector<uint8_t> owned;     // ... or the same layout in memory (compute)
  int32_t n_ctx = 0, n_vocab = 0, n_chunk = 0;
  const int32_t* tokens = nullptr;
  const uint16_t* data = nullptr;

  // Validates the layout of `bytes` and points tokens/data into it; `name` for errors.
  void parse(std::span<const uint8_t> bytes, const std::string& name) {
    if (bytes.size() < 20 || std::memcmp(bytes.data(), kMagic, 8) != 0)
      throw_error("{}: not a logits file (expected the magic \"_logits_\" at offset 0)", name);
    std::memcpy(&n_ctx, bytes.data() + 8, 4);
    std::memcpy(&n_vocab, bytes.data() + 12, 4);
    std::memcpy(&n_chunk, bytes.data() + 16, 4);
    if (n_ctx < 2 || n_vocab <= 0 || n_chunk <= 0)
      throw_error("{}: offset 8: invalid header n_ctx {}, n_vocab {}, n_chunk {}", name, n_ctx,
                  n_vocab, n_chunk);
    const uint64_t n_tok = checked_mul(uint64_t(n_ctx), uint64_t(n_chunk), name);
    const uint64_t per_chunk = checked_mul(uint64_t(records_per_chunk(n_ctx)),
                                           uint64_t(record_u16(n_vocab)) * 2, name);
    const uint64_t need =
        checked_add(20 + n_tok * 4, checked_mul(per_chunk, uint64_t(n_chunk), name), name);
    if (bytes.size() < need)
      throw_error("{}: truncated: {} chunks of {} tokens x {} vocab need {} bytes, file has {}",
                  name, n_chunk, n_ctx, n_vocab, need, bytes.size());
    tokens = reinterpret_cast<const int32_t*>(bytes.data() + 20);
    data = reinterpret_cast<const uint16_t*>(bytes.data() + 20 + n_tok * 4);
    for (uint64_t i = 0; i < n_tok; ++i)
      if (tokens[i] < 0 || tokens[i] >= n_vocab)
        throw_error("{}: offset {}: token id {} outside the vocabulary of {}", name, 20 + 4 * i,
                    tokens[i], n_vocab);
  }
};

LogitsFile::LogitsFile() : impl_(std::make_unique<Impl>()) {}
LogitsFile::~LogitsFile() = default;

std::unique_ptr<LogitsFile> LogitsFile::open(const std::string& path) {
  std::unique_ptr<LogitsFile> f(new LogitsFile());
  f->impl_->map.emplace(path);
  f->impl_->parse(f->impl_->map->bytes(), path);
  return f;
}

std::unique_ptr<LogitsFile> LogitsFile::compute(model::Session& session,
                                                std::span<const int32_t> tokens,
                                                const ChunkOptions& options) {
  ChunkOptions o = options;
  o.first = o.n_ctx / 2;
  o.all_logits = false;
  o.n_chunks = chunk_count(int64_t(tokens.size()), o);
  const int32_t n_ctx = int32_t(o.n_ctx), n_chunk = int32_t(o.n_chunks);
  const int32_t n_vocab = int32_t(session.model().config().n_vocab);
  const size_t n_tok = size_t(n_ctx) * size_t(n_chunk);
  const size_t chunk_u16 = size_t(records_per_chunk(n_ctx) * record_u16(n_vocab));
  std::unique_ptr<LogitsFile> f(new LogitsFile());
  std::vector<uint8_t>& b = f->impl_->owned;
  b.resize(20 + n_tok * 4 + size_t(n_chunk) * chunk_u16 * 2);
  std::memcpy(b.data(), kMagic, 8);
  std::memcpy(b.data() + 8, &n_ctx, 4);
  std::memcpy(b.data() + 12, &n_vocab, 4);
  std::memcpy(b.data() + 16, &n_chunk, 4);
  std::memcpy(b.data() + 20, tokens.data(), n_tok * 4);
  auto* records = reinterpret_cast<uint16_t*>(b.data() + 20 + n_tok * 4);
  perplexity(session, tokens.first(n_tok), o, [&](const ChunkView& c) {
    compress_chunk(c, n_ctx, n_vocab, records + size_t(c.index) * chunk_u16);
  });
  f->impl_->parse(b, "computed base logits");
  return f;
}

int32_t LogitsFile::n_ctx() const { return impl_->n_ctx; }
int32_t LogitsFile::n_vocab() const { return impl_->n_vocab; }
int32_t LogitsFile::n_chunk() const { return impl_->n_chunk; }
std::span<const int32_t> LogitsFile::tokens() const {
  return {impl_->tokens, size_t(impl_->n_ctx) * size_t(impl_->n_chunk)};
}
const uint16_t* LogitsFile::chunk(int32_t i) const {
  return impl_->data + size_t(i) * size_t(records_per_chunk(impl_->n_ctx)) *
                           size_t(record_u16(impl_->n_vocab));
}

}  // namespace imq::eval
