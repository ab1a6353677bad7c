// imq imatrix -m MODEL -f TEXT: collection, printing llama-imatrix's per-chunk perplexities.
// SIGINT/SIGTERM stop after saving the chunks completed so far.

#include <chrono>
#include <csignal>
#include <cstdio>

#include <fmt/format.h>

#include "cmd_imatrix.h"
#include "imq/error.h"
#include "imq/gguf.h"
#include "imq/model.h"
#include "imq/tokenizer.h"

#include "progress.h"
#include "stop_signals.h"
#include "text_file.h"

namespace imq::cli {
namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

int run_collection(CollectCommand& c) {
  imatrix::CollectOptions& o = c.opt;
  const bool log = c.verbosity >= 1;
  auto model = load_model(c.model_path, c.common, c.log);
  auto tokenizer = load_tokenizer(model->file());
  if (log) c.log.print("compute_imatrix: tokenizing the input ..");
  const auto t0 = Clock::now();
  const std::vector<int32_t> tokens = tokenizer->encode(read_text(c.text_path, "the calibration text"), true, c.parse_special);
  if (log)
    c.log.print(fmt::format("compute_imatrix: tokenization took {:.3f} ms ({} tokens)",
                            1000 * std::chrono::duration<double>(Clock::now() - t0).count(), tokens.size()));
  o.n_ubatch = std::min(o.n_ubatch, std::max<int64_t>(1, c.n_batch));
  const int32_t bos = tokenizer->add_bos() ? tokenizer->bos() : -1;

  const auto start = Clock::now();
  Progress progress("imatrix: chunk", "chunks/s");
  imatrix::CollectHooks hooks;
  hooks.stop = &g_stop;
  hooks.on_chunk = [&](const imatrix::CollectProgress& p) {
    progress.clear();
    if (p.done == 1 && log)
      c.log.print(fmt::format("compute_imatrix: computing over {} chunks, n_ctx={}, n_ubatch={}",
                              p.n_chunks, o.n_ctx, std::min(o.n_ubatch, o.n_ctx)));
    if (!c.no_ppl) {
      std::printf("[%lld]%.4f,", (long long)p.done, p.nll.ppl());
      std::fflush(stdout);
    }
    progress.update(uint64_t(p.done), uint64_t(p.n_chunks));
  };
  hooks.on_save = [&](const std::string& path, uint32_t chunks) {
    if (c.verbosity < 4) return;
    progress.clear();
    c.log.print(fmt::format("stored collected data after {} chunks in {}", chunks, path));
  };

  hooks.on_save_failed = [&](const std::string&, uint32_t chunks, const std::string& error) {
    progress.clear();
    c.log.print(fmt::format("imq imatrix: warning: the save after {} chunks failed ({}); collecting goes "
                            "on in memory and the next save retries", chunks, error));
  };

  imatrix::CollectResult r;
  {
    StopSignals signals;
    try {
      r = imatrix::collect(*model, tokens, bos, c.start ? std::move(*c.start) : imatrix::Imatrix{}, o, hooks);
    } catch (...) {
      progress.clear();
      if (!c.no_ppl) std::printf("\n");
      std::fflush(stdout);
      throw;
    }
  }
  progress.clear();
  if (!c.no_ppl) {
    std::printf("\n");
    if (!r.stopped) std::printf("Final estimate: PPL = %.4f +/- %.5f\n", r.nll.ppl(), r.nll.error());
  }
  std::fflush(stdout);
  if (log) {
    c.log.print(imatrix::coverage_summary(r.data));
    c.log.print(fmt::format("compute_imatrix: {} chunks in {:.2f} s", r.chunks_done,
                            std::chrono::duration<double>(Clock::now() - start).count()));
  }
  if (r.stopped) {
    const int sig = g_signal;
    if (r.chunks_done > 0)
      std::fprintf(stderr, "imq imatrix: stopped by signal %d after %lld chunks, saved to %s "
                   "(continue with --chunk %lld --in-file %s)\n", sig, (long long)r.chunks_done,
                   o.output.c_str(), (long long)(o.first_chunk + r.chunks_done), o.output.c_str());
    else
      std::fprintf(stderr, "imq imatrix: stopped by signal %d before the first chunk completed; nothing saved\n", sig);
    return 128 + sig;
  }
  return 0;
}

}  // namespace imq::cli
