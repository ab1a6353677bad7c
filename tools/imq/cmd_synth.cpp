// imq synth: write a random-weight model of one of the architectures imq runs (tests, benchmarks).
#include <cstdio>
#include <map>

#include <CLI/CLI.hpp>

#include "commands.h"
#include "imq/ggml_types.h"
#include "imq/model.h"

namespace imq::cli {

int cmd_synth(int argc, char** argv) {
  CLI::App app{"write a small random-weight model", "imq synth"};
  model::SynthOptions o;
  std::string out, arch = "llama", rope = "normal", type = "f32";
  app.add_option("-o,--output", out, "output GGUF file")->required();
  app.add_option("--arch", arch, "llama, llama-moe, qwen2, qwen3, qwen3moe or gemma3")
      ->check(CLI::IsMember({"llama", "llama-moe", "qwen2", "qwen3", "qwen3moe", "gemma3"}))
      ->capture_default_str();
  app.add_option("--n-embd", o.n_embd, "embedding length")->capture_default_str();
  app.add_option("--n-layer", o.n_layer, "blocks")->capture_default_str();
  app.add_option("--n-head", o.n_head, "attention heads")->capture_default_str();
  app.add_option("--n-head-kv", o.n_head_kv, "key/value heads")->capture_default_str();
  app.add_option("--n-ff", o.n_ff, "feed-forward length (per expert)")->capture_default_str();
  app.add_option("--n-expert", o.n_expert, "experts (llama-moe)")->capture_default_str();
  app.add_option("--n-expert-used", o.n_expert_used, "experts per token")->capture_default_str();
  app.add_option("--vocab", o.n_vocab, "vocabulary size (>= 260)")->capture_default_str();
  app.add_option("--vocab-from", o.vocab_from, "copy the vocabulary (tokenizer.*) of this GGUF");
  app.add_option("--ctx", o.n_ctx_train, "training context length written to the file")
      ->capture_default_str();
  app.add_option("--seed", o.seed, "random seed")->capture_default_str();
  app.add_option("--n-swa", o.n_swa, "sliding window (gemma3)")->capture_default_str();
  app.add_flag("--tied", o.tied, "no output.weight (output projection = token_embd)");
  app.add_option("--rope", rope, "normal (llama) or neox")
      ->check(CLI::IsMember({"normal", "neox"}))->capture_default_str();
  app.add_option("--type", type, "weight type: f32 or f16")
      ->check(CLI::IsMember({"f32", "f16"}))->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  o.moe = arch == "llama-moe";
  o.arch = o.moe ? "llama" : arch;
  o.rope = rope == "neox" ? model::RopeType::Neox : model::RopeType::Normal;
  o.type = type == "f16" ? GgmlType::F16 : GgmlType::F32;
  model::write_synthetic_model(o, out);
  std::printf("wrote %s\n", out.c_str());
  return 0;
}

}  // namespace imq::cli
