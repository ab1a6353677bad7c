// imq run: mistral.rs-style in-situ quantization — load, calibrate, quantize in memory, generate
// (imq/insitu.h). Generated text alone on stdout; on stderr one line per stage and, when stderr
// is a terminal, a progress bar for the stage that runs; files only with --write-*.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>
#include <memory>

#include "commands.h"
#include "imq/insitu.h"
#include "progress.h"

namespace imq::cli {

int cmd_run(int argc, char** argv) {
  CLI::App app{"in-situ quantization: load, calibrate, quantize in memory, generate", "imq run"};
  std::string model, prompt, write_gguf, write_imatrix, search = "reference";
  insitu::Options o;
  int64_t n_predict = 128;
  bool interactive = false;
  eval::SamplingOptions sampling;
  app.add_option("-m,--model", model, "model (GGUF file or HF folder)")->required();
  app.add_option("--isq", o.isq, "quantization: mistral.rs's ISQ names (Q2K Q3K Q4K Q5K Q6K Q4_0 Q4_1 Q5_0 Q5_1 Q8_0: every weight matrix that type) or a llama-quantize type (Q4_K_M ...)")->capture_default_str();
  app.add_option("--calibration-file", o.calibration_file, "text to collect the importance matrix from (in memory); without it, plain rounding");
  app.add_option("--calibration-ctx", o.calibration_ctx, "tokens per calibration chunk")->capture_default_str();
  app.add_option("--calibration-chunks", o.calibration_chunks, "calibration chunks (-1: all)")->capture_default_str();
  app.add_option("--search", search, "block search: reference (llama-quantize's bytes) or imq");
  app.add_option("-p,--prompt", prompt, "prompt to continue");
  app.add_option("-n,--n-predict", n_predict, "tokens to generate")->capture_default_str();
  app.add_flag("-i,--interactive", interactive, "read prompts from stdin, one per line, and continue each");
  app.add_option("--temp", sampling.temp, "temperature (<= 0: greedy)")->capture_default_str();
  app.add_option("--top-k", sampling.top_k, "top-k")->capture_default_str();
  app.add_option("--top-p", sampling.top_p, "top-p")->capture_default_str();
  app.add_option("-s,--seed", sampling.seed, "sampling seed")->capture_default_str();
  app.add_option("-t,--threads", o.n_threads, "threads (0: all cores)");
  app.add_option("--write-gguf", write_gguf, "also save the quantized model (what imq quantize writes)");
  app.add_option("--write-imatrix", write_imatrix, "also save the importance matrix (GGUF)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (prompt.empty() && !interactive && write_gguf.empty() && write_imatrix.empty())
    throw Error("nothing to do: give -p PROMPT, -i, --write-gguf or --write-imatrix");
  o.search = quantize::parse_search(search);
  std::unique_ptr<Progress> bar;  // the running stage's (draws only on a terminal)
  insitu::Stage bar_stage = insitu::Stage::Load;
  o.progress = [&](insitu::Stage st, uint64_t done, uint64_t total) {
    if (!bar || st != bar_stage) {
      bar = std::make_unique<Progress>(std::string(insitu::stage_name(st)) + ":",
                                       st == insitu::Stage::Calibrate ? "chunks/s" : "");
      bar_stage = st;
    }
    bar->update(done, total);
  };
  o.log = [&](const std::string& s) {
    if (bar) bar->clear();
    std::fprintf(stderr, "imq run: %s\n", s.c_str());
  };
  auto runner = insitu::Runner::build(model, o);
  bar.reset();
  if (!write_imatrix.empty()) runner->save_imatrix(write_imatrix);
  if (!write_gguf.empty()) runner->save_gguf(write_gguf);
  auto answer = [&](const std::string& p) {
    std::fputs(p.c_str(), stdout);
    std::fputs(runner->generate(p, n_predict, sampling).c_str(), stdout);
    std::fputs("\n", stdout);
    std::fflush(stdout);
  };
  if (!prompt.empty()) answer(prompt);
  if (interactive)
    for (std::string line; std::fputs("> ", stderr), std::getline(std::cin, line);)
      if (!line.empty()) answer(line);
  return 0;
}

}  // namespace imq::cli
