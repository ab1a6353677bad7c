// llama-perplexity's --kl-divergence-base file (spec §i):
//
//   "_logits_" | i32 n_ctx | i32 n_vocab | i32 n_chunk | i32 tokens[n_chunk*n_ctx]
//   per chunk, per position p = n_ctx/2 .. n_ctx-2, one record of nv = 2*ceil(n_vocab/2)+4 u16:
//     f32 scale | f32 min_log_prob | u16 q[n_vocab] (+1 zero pad when n_vocab is odd)
//   decoded log p_i = scale*q_i + min_log_prob; q_i = 0 at or below max-16.
#include <cmath>
#include <cstring>
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
  const int64_t first = s.n_ctx / 2, nv = record_u16(s.n_vocab);
  if (c.n_ctx != s.n_ctx || c.n_vocab != s.n_vocab || c.logits_from > first)
    throw_error("{}: chunk does not match the file (n_ctx {}, n_vocab {}, logits from {})",
                s.file.path(), c.n_ctx, c.n_vocab, c.logits_from);
  for (int64_t p = first; p < s.n_ctx - 1; ++p)
    compress(c.logits + (p - c.logits_from) * s.n_vocab, s.n_vocab,
             s.buf.data() + (p - first) * nv);
  s.file.write(s.buf.data(), s.buf.size() * 2);
}

void LogitsFileWriter::commit() { impl_->file.commit(); }

struct LogitsFile::Impl {
  MappedFile map;
  int32_t n_ctx = 0, n_vocab = 0, n_chunk = 0;
  const int32_t* tokens = nullptr;
  const uint16_t* data = nullptr;
};

LogitsFile::LogitsFile() = default;
LogitsFile::~LogitsFile() = default;

std::unique_ptr<LogitsFile> LogitsFile::open(const std::string& path) {
  std::unique_ptr<LogitsFile> f(new LogitsFile());
  f->impl_ = std::make_unique<Impl>(Impl{MappedFile(path)});
  Impl& s = *f->impl_;
  const auto bytes = s.map.bytes();
  if (bytes.size() < 20 || std::memcmp(bytes.data(), kMagic, 8) != 0)
    throw_error("{}: not a logits file (expected the magic \"_logits_\" at offset 0)", path);
  std::memcpy(&s.n_ctx, bytes.data() + 8, 4);
  std::memcpy(&s.n_vocab, bytes.data() + 12, 4);
  std::memcpy(&s.n_chunk, bytes.data() + 16, 4);
  if (s.n_ctx < 2 || s.n_vocab <= 0 || s.n_chunk <= 0)
    throw_error("{}: offset 8: invalid header n_ctx {}, n_vocab {}, n_chunk {}", path, s.n_ctx,
                s.n_vocab, s.n_chunk);
  const uint64_t n_tok = checked_mul(uint64_t(s.n_ctx), uint64_t(s.n_chunk), path);
  const uint64_t per_chunk = checked_mul(uint64_t(records_per_chunk(s.n_ctx)),
                                         uint64_t(record_u16(s.n_vocab)) * 2, path);
  const uint64_t need =
      checked_add(20 + n_tok * 4, checked_mul(per_chunk, uint64_t(s.n_chunk), path), path);
  if (bytes.size() < need)
    throw_error("{}: truncated: {} chunks of {} tokens x {} vocab need {} bytes, file has {}", path,
                s.n_chunk, s.n_ctx, s.n_vocab, need, bytes.size());
  s.tokens = reinterpret_cast<const int32_t*>(bytes.data() + 20);
  s.data = reinterpret_cast<const uint16_t*>(bytes.data() + 20 + n_tok * 4);
  for (uint64_t i = 0; i < n_tok; ++i)
    if (s.tokens[i] < 0 || s.tokens[i] >= s.n_vocab)
      throw_error("{}: offset {}: token id {} outside the vocabulary of {}", path, 20 + 4 * i,
                  s.tokens[i], s.n_vocab);
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
