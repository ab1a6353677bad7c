// imq perplexity: llama-perplexity's perplexity and KL-divergence modes (same flags, same
// printed results): -m -f -c -b --chunks -t, --kl-divergence-base FILE [--kl-divergence].
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "commands.h"
#include "common_flags.h"
#include "imq/error.h"
#include "imq/eval.h"
#include "imq/model.h"
#include "imq/tokenizer.h"
#include "progress.h"
#include "stop_signals.h"
#include "text_file.h"

namespace imq::cli {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

}  // namespace

int cmd_perplexity(int argc, char** argv) {
  CLI::App app{"perplexity and KL divergence of a model over a text (llama-perplexity flags)",
               "imq perplexity"};
  std::string model_path, text_path, kld_base;
  int64_t n_ctx = 512, n_batch = 2048, n_ubatch = 512, n_chunks = -1;
  int n_threads = 0;
  bool kld = false;
  CommonFlags common;
  Log log;
  app.add_option("-m,--model", model_path, "model GGUF file")->required();
  app.add_option("-f,--file", text_path, "text file to evaluate");
  app.add_option("-c,--ctx-size", n_ctx, "tokens per chunk (context size)")->capture_default_str();
  app.add_option("-b,--batch-size", n_batch, "logical batch size: n_batch / n_ctx chunks per batch, as llama-perplexity (it sets the micro-batches, and so the attention rounding)")
      ->capture_default_str();
  app.add_option("--ubatch-size", n_ubatch, "tokens per forward pass (also -ub)")->capture_default_str();
  app.add_option("--chunks", n_chunks, "most chunks to evaluate (-1: all)")->capture_default_str();
  app.add_option("-t,--threads", n_threads, "threads (default: all cores)");
  app.add_option("--kl-divergence-base,--save-all-logits", kld_base,
                 "logits file: written by a perplexity run, read with --kl-divergence");
  app.add_flag("--kl-divergence", kld, "compare with the --kl-divergence-base logits");
  add_common_flags(app, common);
  if (auto rc = parse_llama(app, argc, argv, 1, "llama-perplexity", &common)) return *rc;
  common.apply(log);
  n_threads = common.threads(n_threads);
  if (kld && kld_base.empty()) throw_error("--kl-divergence needs --kl-divergence-base FILE");
  if (!kld && text_path.empty()) throw_error("no text: give -f FILE");
  if (n_ctx < 2) throw_error("-c {}: the context must hold at least 2 tokens", n_ctx);

  auto model = load_model(model_path, common, log);
  auto tokenizer = load_tokenizer(model->file());
  eval::ChunkOptions opt;
  opt.n_ctx = n_ctx;
  opt.n_chunks = n_chunks;
  opt.bos = tokenizer->add_bos() ? tokenizer->bos() : -1;
  opt.n_batch = n_batch;
  opt.n_ubatch = n_ubatch;
  opt.text_name = text_path;

  std::unique_ptr<eval::LogitsFile> base;
  std::vector<int32_t> tokens;
  if (kld) {
    base = eval::LogitsFile::open(kld_base);
    if (n_ctx < base->n_ctx())
      throw_error("{} was computed with a context of {}, the current one is {}: increase it with -c",
                  kld_base, base->n_ctx(), n_ctx);
    opt.n_ctx = base->n_ctx();
  } else {
    const auto t0 = Clock::now();
    log.info("perplexity: tokenizing the input ..");
    tokens = tokenizer->encode(read_text(text_path, "the text file"), true, false);
    log.info("perplexity: tokenization took {:.3f} ms", 1000 * seconds_since(t0));
  }

  model::SessionOptions so;
  so.n_ctx = opt.n_ctx;
  so.n_ubatch = std::min(std::max<int64_t>(1, n_ubatch), opt.n_ctx);
  so.n_threads = n_threads;
  so.f16_keys = common.f16_keys();
  so.f16_values = common.f16_values();
  so.ggml_cpu = common.ggml_cpu();
  so.exact_products = common.exact_products();
  model::Session session(*model, so);
  Progress progress("perplexity:");
  const auto start = Clock::now();

  if (kld) {
    const int64_t n = n_chunks < 0 ? base->n_chunk() : std::min<int64_t>(n_chunks, base->n_chunk());
    log.info("kl_divergence: computing over {} chunks, n_ctx={}, n_ubatch={}", n, opt.n_ctx, so.n_ubatch);
    auto result = eval::kl_divergence(session, *base, opt, [&](int64_t i, const eval::KldResult& r) {
      progress.clear();
      if (i == 0) std::fputs(eval::kld_table_header().c_str(), stdout);
      std::fputs(eval::kld_chunk_line(i, r.totals).c_str(), stdout);
      std::fflush(stdout);
      progress.update(uint64_t(i + 1), uint64_t(n));
    });
    progress.clear();
    std::fputs(eval::kld_report(result).c_str(), stdout);
    return 0;
  }

  const int64_t n = eval::chunk_count(int64_t(tokens.size()), opt);
  log.info("perplexity: calculating perplexity over {} chunks, n_ctx={}, n_ubatch={}, threads={}", n,
           opt.n_ctx, so.n_ubatch, n_threads);
  std::unique_ptr<eval::LogitsFileWriter> writer;
  std::optional<StopSignals> signals;  // while the logits file is written: stop between chunks
  if (!kld_base.empty()) {
    signals.emplace();
    log.info("perplexity: saving all logits to {}", kld_base);
    writer = std::make_unique<eval::LogitsFileWriter>(
        kld_base, int32_t(opt.n_ctx), int32_t(model->config().n_vocab),
        std::span<const int32_t>(tokens).first(size_t(n * opt.n_ctx)));
  }
  auto totals = eval::perplexity(session, tokens, opt, [&](const eval::ChunkView& c) {
    if (writer && g_stop) {  // unwinding removes the logits file's temporary file
      progress.clear();
      std::printf("\n");
      throw Stopped(fmt::format("stopped by signal {} after {} chunks; {} not written", int(g_signal),
                                c.index, kld_base));
    }
    if (writer) writer->add_chunk(c);
    progress.clear();
    std::printf("[%lld]%.4f,", (long long)c.index + 1, c.totals.ppl());
    std::fflush(stdout);
    progress.update(long(c.index + 1), long(c.n_chunks));
  });
  progress.clear();
  if (writer) writer->commit();
  std::printf("\n");
  std::printf("Final estimate: PPL = %.4f +/- %.5f\n", totals.ppl(), totals.error());
  log.info("perplexity: {:.2f} s for {} chunks", seconds_since(start), n);
  return 0;
}

}  // namespace imq::cli
