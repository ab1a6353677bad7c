// --tune-mix on tiny synthetic models (no ../shared): Model::replace_weight swaps and restores
// a weight exactly (and Model::share sees the file's); the tuned mix fits the standard mix's bytes, its measurements behave
// (more bits, less KLD at the extremes), and the printed overrides reproduce the file.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "imq/error.h"
#include "imq/ggml_types.h"
#include "imq/mix_tune.h"
#include "imq/model.h"
#include "imq/quantize.h"
#include "model/weights.h"
#include "model/synth_util.h"
#include "test_util.h"
#include "test_util_impl.h"

namespace imq::test {
namespace {

using G = GgmlType;

std::string synth(const TempDir& d, bool moe = false, bool tied = false) {
  model::SynthOptions o;
  o.n_embd = 256, o.n_layer = 2, o.n_head = 4, o.n_head_kv = 2, o.n_ff = 256, o.n_vocab = 300;
  o.moe = moe, o.n_expert = 3, o.n_expert_used = 2, o.tied = tied, o.seed = 5;
  return write_synth(d, o, std::string("m") + (moe ? "-moe" : "") + (tied ? "-tied" : "") + ".gguf");
}

// Calibration text: the synthetic vocabulary is byte-level, so about a token per character.
std::string calibration_text(size_t n_sentences) {
  std::string s;
  for (size_t i = 0; i < n_sentences; ++i) s += "the quick brown fox " + std::to_string(i) + " jumps over the lazy dog. ";
  return s;
}

std::vector<float> logits_of(const model::Model& m, const std::vector<int32_t>& tokens) {
  model::SessionOptions so;
  so.n_ctx = 64, so.n_ubatch = 64, so.n_threads = 2;
  model::Session s(m, so);
  std::vector<float> out(tokens.size() * size_t(m.config().n_vocab));
  s.decode(tokens, 0, out);
  return out;
}

TEST(ReplaceWeight, SwapsAndRestoresExactly) {
  TempDir d;
  const std::string path = synth(d, false, true);
  auto m = model::Model::load(path);
  const auto tokens = random_tokens(24, m->config().n_vocab, 9);
  const auto before = logits_of(*m, tokens);

  auto file = gguf::File::open(path);
  quantize::Options opt;
  opt.ftype = quantize::FType::Q4_K_M;
  const quantize::Plan plan = quantize::make_plan(file, opt);
  const auto& tp = *std::find_if(plan.tensors.begin(), plan.tensors.end(),
                                 [](const auto& t) { return t.name == "token_embd.weight"; });
  auto bytes = quantize::quantize_tensor(file, tp, G::Q2_K, quantize::Search::kReference, 2);
  EXPECT_EQ(bytes.size(), size_t(256 / 256 * 84 * 300));
  m->replace_weight("token_embd.weight", G::Q2_K, std::move(bytes));
  EXPECT_EQ(m->weights().output.type, G::Q2_K);  // tied: the output follows
  // A model sharing the mapping has the file's weights, whatever the first one replaced.
  const auto shared = model::Model::share(*m);
  EXPECT_EQ(&shared->file(), &m->file());
  EXPECT_EQ(shared->weights().output.type, m->file().tensor("token_embd.weight").type);
  EXPECT_EQ(logits_of(*shared, tokens), before);
  const auto swapped = logits_of(*m, tokens);
  double diff = 0;
  for (size_t i = 0; i < before.size(); ++i) diff = std::max(diff, double(std::abs(before[i] - swapped[i])));
  EXPECT_GT(diff, 1e-3);
  m->replace_weight("token_embd.weight", GgmlType::F32, {});
  EXPECT_EQ(logits_of(*m, tokens), before);

  EXPECT_THROW(m->replace_weight("blk.0.attn_x.weight", G::Q8_0, std::vector<uint8_t>(10)), Error);
  EXPECT_THROW(m->replace_weight("blk.0.attn_q.weight", G::Q8_0, std::vector<uint8_t>(10)), Error);
}

TEST(MixTune, FitsTheBudgetAndMeasuresSensibly) {
  for (bool moe : {false, true}) {
    TempDir d;
    const std::string path = synth(d, moe);
    quantize::Options opt;
    opt.ftype = quantize::FType::Q3_K_M;
    opt.tensor_types = {quantize::parse_tensor_type_override("attn_q=q8_0")};  // fixed by the user
    tune::MixTuneOptions to;
    to.n_ctx = 32, to.n_chunks = 3, to.n_threads = 2;
    const tune::MixTuneResult r = tune::tune_mix(path, opt, calibration_text(10), to);

    ASSERT_FALSE(r.groups.empty());
    EXPECT_LE(r.chosen_bytes, r.budget_bytes);
    uint64_t budget = 0;
    for (const auto& g : r.groups) {
      EXPECT_NE(g.name, "attn_q.weight") << "a user-fixed tensor was tuned";
      const bool single = g.name == "output.weight" || g.name == "token_embd.weight";
      EXPECT_EQ(g.tensors.size(), single ? 1u : 2u) << g.name;  // one per layer otherwise
      ASSERT_GE(g.candidates.size(), 2u) << g.name;
      for (size_t c = 1; c < g.candidates.size(); ++c) EXPECT_GT(g.candidates[c].bytes, g.candidates[c - 1].bytes) << g.name;
      EXPECT_GT(g.candidates.front().kld, g.candidates.back().kld) << g.name;
      EXPECT_LT(g.candidates.back().kld, 0.1 * g.candidates.front().kld) << g.name;  // Q8_0 vs Q2_K
      budget += g.standard_bytes;
    }
    EXPECT_EQ(budget, r.budget_bytes);

    // The overrides, applied, give a file no larger than the standard one; attn_q stays q8_0.
    auto file = gguf::File::open(path);
    const quantize::Plan standard = quantize::make_plan(file, opt);
    quantize::Options tuned = opt;
    tuned.tensor_types.insert(tuned.tensor_types.begin(), r.overrides.begin(), r.overrides.end());
    const quantize::Plan plan = quantize::make_plan(file, tuned);
    EXPECT_LE(plan.file_size, standard.file_size);
    for (const auto& tp : plan.tensors) {
      if (tp.name.find("attn_q") != std::string::npos) {
        EXPECT_EQ(tp.dst_type, G::Q8_0);
      }
    }
    EXPECT_EQ(r.overrides.size(), r.kept_standard ? 0u : size_t(2 + 2 * 7 - 2));  // attn_q fixed
    if (r.kept_standard) {
      EXPECT_TRUE(r.overrides.empty());
      EXPECT_GE(r.kld_chosen, r.kld_standard);
    } else {
      EXPECT_LT(r.kld_chosen, r.kld_standard);
    }
  }
}

TEST(MixTune, RefusesNonKQuantMixesAndShortText) {
  TempDir d;
  const std::string path = synth(d);
  quantize::Options opt;
  opt.ftype = quantize::FType::Q4_0;
  tune::MixTuneOptions to;
  to.n_ctx = 32, to.n_chunks = 2, to.n_threads = 1;
  EXPECT_THROW(tune::tune_mix(path, opt, calibration_text(10), to), Error);
  opt.ftype = quantize::FType::Q4_K_M;
  EXPECT_THROW(tune::tune_mix(path, opt, "too short", to), Error);  // < 2 chunks
}

TEST(MixTune, CommandLineOverridesReproduceTheFile) {
  TempDir d;
  const std::string path = synth(d);
  {
    std::ofstream f(d.file("calib.txt"));
    f << calibration_text(60);
  }
  const std::string common = " --tune-ctx 32 --tune-chunks 3 " + path;
  RunResult r = run_imq("quantize --tune-mix " + d.file("calib.txt") + " --tune-save " +
                        d.file("types.txt") + common + " " + d.file("tuned.gguf") + " Q2_K 2");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("tune: whole mix"), std::string::npos) << r.err;
  // This model's Q2_K mix is improved (measured), so every quantized tensor has a line: only
  // PATTERN=TYPE words, as llama-quantize's --tensor-type-file reads them.
  const std::string types = read_all(d.file("types.txt"));
  EXPECT_EQ(std::count(types.begin(), types.end(), '\n'), 2 + 2 * 7) << types;
  EXPECT_EQ(types.find('#'), std::string::npos) << types;
  EXPECT_EQ(types.find(' '), std::string::npos) << types;
  // The saved overrides alone give the same bytes (so llama-quantize can reproduce the file).
  r = run_imq("quantize --tensor-type-file " + d.file("types.txt") + " " + path + " " +
              d.file("again.gguf") + " Q2_K 2");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(read_all(d.file("again.gguf")), read_all(d.file("tuned.gguf")));
  {
    std::ofstream f(d.file("short.txt"));
    f << "too short";
  }
  r = run_imq("quantize --tune-mix " + d.file("short.txt") + common + " " + d.file("x.gguf") + " Q4_K_M");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find(d.file("short.txt") + ": the text tokenizes to only"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_FALSE(std::filesystem::exists(d.file("x.gguf")));
  r = run_imq("quantize --tune-mix " + d.file("calib.txt") + common + " " + d.file("x.gguf") + " Q4_0");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("K-quant"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace imq::test
