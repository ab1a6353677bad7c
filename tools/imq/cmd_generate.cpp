// imq generate: continue a prompt (llama-completion's -m -p -n --temp --top-k --top-p --seed
// -t), streaming the text to stdout.
#include <cstdio>
#include <random>
#include <string>

#include <CLI/CLI.hpp>

#include "commands.h"
#include "common_flags.h"
#include "imq/error.h"
#include "imq/eval.h"
#include "imq/model.h"
#include "imq/tokenizer.h"

namespace imq::cli {

int cmd_generate(int argc, char** argv) {
  CLI::App app{"generate text from a prompt", "imq generate"};
  std::string model_path, prompt;
  eval::GenerateOptions g;
  int64_t n_ctx = 0;
  int n_threads = 0;
  bool ignore_eos = false, no_echo = false;
  CommonFlags common;
  Log log;
  app.add_option("-m,--model", model_path, "model GGUF file")->required();
  app.add_option("-p,--prompt", prompt, "prompt text")->required();
  app.add_option("-n,--n-predict", g.n_predict, "tokens to generate (-1: until end of text)")
      ->capture_default_str();
  app.add_option("--temp", g.sampling.temp, "temperature (0: greedy)")->capture_default_str();
  app.add_option("--top-k", g.sampling.top_k, "sample among the k most likely tokens (0: all)")
      ->capture_default_str();
  app.add_option("--top-p", g.sampling.top_p, "nucleus: smallest set with this probability")
      ->capture_default_str();
  app.add_option("-c,--ctx-size", n_ctx, "context size (0: prompt + n, or the training context)");
  app.add_option("-t,--threads", n_threads, "threads (default: all cores)");
  app.add_flag("--ignore-eos", ignore_eos, "never stop at (or sample) end-of-generation tokens");
  app.add_flag("--no-echo", no_echo, "do not print the prompt");
  add_common_flags(app, common);  // -s/--seed: the sampler's seed (default 0; < 0: a random one)
  if (auto rc = parse_llama(app, argc, argv, 1, "llama-completion", &common)) return *rc;
  common.apply(log);
  if (common.seed) g.sampling.seed = *common.seed >= 0 ? uint64_t(*common.seed) : std::random_device{}();
  n_threads = common.threads(n_threads);
  auto model = load_model(model_path, common, log);
  auto tok = load_tokenizer(model->file());
  const auto ids = tok->encode(prompt, true, true);
  if (ids.empty()) throw_error("the prompt tokenizes to nothing");

  const int64_t train = model->config().n_ctx_train > 0 ? model->config().n_ctx_train : 4096;
  model::SessionOptions so;
  so.n_ctx = n_ctx > 0 ? n_ctx : (g.n_predict >= 0 ? int64_t(ids.size()) + g.n_predict : train);
  so.n_ubatch = std::min<int64_t>(512, so.n_ctx);
  so.n_threads = n_threads;
  so.f16_keys = common.f16_keys();
  so.ggml_cpu = common.ggml_cpu();
  so.exact_products = common.exact_products();
  so.f16_values = common.f16_values();
  if (int64_t(ids.size()) >= so.n_ctx)
    throw_error("the prompt has {} tokens, the context only {}", ids.size(), so.n_ctx);
  model::Session session(*model, so);

  if (ignore_eos) {
    for (int32_t i = 0; i < tok->n_vocab(); ++i)
      if (tok->is_eog(i)) g.banned.push_back(i);
  } else {
    g.is_eog = [&](int32_t id) { return tok->is_eog(id); };
  }
  if (!no_echo) {
    for (int32_t id : ids)
      if (id != tok->bos()) std::fputs(tok->piece(id).c_str(), stdout);
    std::fflush(stdout);
  }
  eval::generate(session, ids, g, [&](int32_t id) {
    if (!tok->is_eog(id)) std::fputs(tok->piece(id).c_str(), stdout);
    std::fflush(stdout);
    return true;
  });
  std::printf("\n");
  return 0;
}

}  // namespace imq::cli
