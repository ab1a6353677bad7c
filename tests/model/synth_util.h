// Tiny synthetic models for the model tests, written into a temporary directory.
#pragma once
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "imq/ggml_types.h"
#include "imq/model.h"
#include "test_util.h"

namespace imq::test {

struct SynthCase {
  const char* name;
  model::SynthOptions options;
};

inline model::SynthOptions synth_dense() {
  model::SynthOptions o;
  o.n_embd = 64, o.n_layer = 2, o.n_head = 4, o.n_head_kv = 2, o.n_ff = 96, o.n_vocab = 300;
  return o;
}
inline model::SynthOptions synth_tied_neox() {
  model::SynthOptions o = synth_dense();
  o.tied = true, o.rope = model::RopeType::Neox, o.n_head_kv = 1, o.seed = 7;
  return o;
}
inline model::SynthOptions synth_moe() {
  model::SynthOptions o = synth_dense();
  o.moe = true, o.n_expert = 4, o.n_expert_used = 2, o.n_ff = 48, o.seed = 3;
  return o;
}
inline model::SynthOptions synth_f16() {
  model::SynthOptions o = synth_dense();
  o.type = GgmlType::F16, o.n_head_kv = 4, o.seed = 11;
  return o;
}
inline model::SynthOptions synth_moe_f16_tied() {
  model::SynthOptions o = synth_moe();
  o.type = GgmlType::F16, o.tied = true, o.n_expert = 3, o.n_expert_used = 1;
  return o;
}

// The other architectures, each as small as the llama cases (gemma3 with six layers: five
// sliding-window ones and a global one, a window of 8 within the tests' 40 tokens).
inline model::SynthOptions synth_arch(const char* arch) {
  model::SynthOptions o = synth_dense();
  o.arch = arch, o.seed = 17;
  if (o.arch == "qwen3moe") o.n_expert = 4, o.n_expert_used = 2, o.n_ff = 48;
  if (o.arch == "gemma3") o.n_layer = 6, o.n_head_kv = 1, o.n_swa = 8;
  return o;
}

inline std::string write_synth(const TempDir& d, const model::SynthOptions& o,
                               const std::string& name = "synth.gguf") {
  const std::string path = d.file(name);
  model::write_synthetic_model(o, path);
  return path;
}

// n token ids drawn uniformly from the vocabulary.
inline std::vector<int32_t> random_tokens(size_t n, int64_t n_vocab, uint32_t seed) {
  std::mt19937 g(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = int32_t(g() % uint32_t(n_vocab));
  return t;
}

// n normal floats (mean 0, standard deviation `scale`).
inline std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

}  // namespace imq::test
