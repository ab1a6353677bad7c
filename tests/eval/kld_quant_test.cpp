// KL divergence of llama.cpp's quantized models against the F32 base, compared with
// llama-perplexity's statistics blocks (kld-q-*.log), running the exact commands of the logs.
// stories260K uses llama.cpp's own base-logits file; the dense and MoE models' base files were
// not kept, so imq writes them from the F32 model with the logged base command.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "common/llama_reference.h"
#include "imq/ggml_types.h"
#include "imq/quant.h"
#include "test_util.h"

namespace imq {
namespace {

// Means over every token: agree to 1 % (the acceptance criterion).
const char* kMeans[] = {"Mean PPL(Q)", "Mean PPL(base)", "Mean PPL(Q)/PPL(base)",
                        "Mean    KLD", "RMS Δp",         "Same top p"};
// Order statistics of the per-token KLD, to 1 % (measured: stories260K identical to the printed
// digits; dense and MoE within 0.2 %, their base logits being imq's own F32 run). The extreme
// tails (max, 99.9 %) and signed Δp percentiles are single tokens and not compared.
const char* kPercentiles[] = {"99.0%   KLD", "95.0%   KLD", "90.0%   KLD", "Median  KLD"};

// ppl_rel: tolerance of the per-chunk PPL(Q) column; pct_rel: of the KLD percentiles.
void compare_with_log(const std::string& out, const std::string& log_text, double ppl_rel, double pct_rel) {
  const auto got = test::kld_statistics(out), want = test::kld_statistics(log_text);
  auto near = [&](const char* k, double rel) {
    ASSERT_TRUE(want.count(k)) << k;
    ASSERT_TRUE(got.count(k)) << k << "\n" << out;
    EXPECT_NEAR(got.at(k), want.at(k), rel * std::abs(want.at(k))) << k;
  };
  for (const char* k : kMeans) near(k, 0.01);
  for (const char* k : kPercentiles) near(k, pct_rel);
  const auto tg = test::kld_table(out), tw = test::kld_table(log_text);
  ASSERT_EQ(tg.size(), tw.size());
  double worst = 0;
  for (size_t i = 0; i < tw.size(); ++i) {
    ASSERT_GE(tg[i].size(), 2u);
    EXPECT_EQ(tg[i][0], tw[i][0]);
    EXPECT_NEAR(tg[i][1], tw[i][1], ppl_rel * tw[i][1]) << "chunk " << i + 1 << " PPL";
    worst = std::max(worst, std::abs(tg[i][1] / tw[i][1] - 1));
  }
  // The measured agreement, for the tolerances' comments.
  std::printf("mean KLD %.6f vs %.6f (%+.2f %%), worst chunk PPL %.3f %%\n", got.at("Mean    KLD"),
              want.at("Mean    KLD"), 100 * (got.at("Mean    KLD") / want.at("Mean    KLD") - 1), 100 * worst);
}

// A README llama-perplexity command as imq arguments: paths under ../shared made absolute,
// "tmp/..." (files llama.cpp's run kept outside ../shared) mapped into `tmp`.
std::string args_of(const std::string& rel_log, const test::TempDir& tmp) {
  const auto cmd = test::reference_command(rel_log);
  EXPECT_FALSE(cmd.empty()) << rel_log;
  std::string args;
  for (size_t i = 1; i < cmd.size(); ++i) {
    const bool path = cmd[i - 1] == "-m" || cmd[i - 1] == "-f" || cmd[i - 1] == "--kl-divergence-base";
    std::string w = cmd[i];
    if (path) w = w.rfind("tmp/", 0) == 0 ? tmp.file(w.substr(4)) : (test::shared_root() / w).string();
    args += " " + w;
  }
  return args;
}

struct KldCase {
  const char* dir;       // reference/<dir>/
  const char* base_log;  // the base command's log ("" where llama.cpp's base file is kept)
  const char* q_log;
  // Per-chunk PPL(Q) tolerance: 0.1 % (the acceptance criterion). Measured: every chunk to the
  // printed digit or within 0.07 %, since products, flash attention, silu and rope follow
  // ggml's arithmetic (kernels/ggml_exact.h).
  double ppl_rel;
  // The llama-quantize log whose command wrote the quantized model under tmp/ ("" where the
  // model is shipped): imq quantize runs that command first (its bytes are llama-quantize's).
  const char* quantize_log = "";
  // Tolerance of the per-token KLD percentiles: 1 % (measured within 0.2 %) where the products
  // are ggml's; 2 % for the i-quants' generic float products (MoE: up to 1.5 % measured, the
  // router's close calls going the other way on a few tokens).
  double pct_rel = 0.01;
};

// Runs case c's commands (quantize, base, KLD) with imq and returns the KLD run's stdout.
std::string run_kld_case(const KldCase& c, const std::string& log_text, const test::TempDir& tmp) {
  const std::string dir = std::string("reference/") + c.dir + "/";
  const std::string cpu = test::ggml_cpu_flag(log_text);  // the build that wrote the log
  if (*c.quantize_log) {
    const auto cmd = test::reference_command(dir + c.quantize_log);
    EXPECT_GE(cmd.size(), 4u) << dir + c.quantize_log;
    std::string args;
    for (size_t i = 1; i < cmd.size(); ++i) {
      const std::string& w = cmd[i];
      const bool path = w.rfind("models/", 0) == 0 || w.rfind("reference/", 0) == 0;
      args += " " + (w.rfind("tmp/", 0) == 0 ? tmp.file(w.substr(4))
                     : path                  ? (test::shared_root() / w).string()
                                             : w);
    }
    const auto q = test::run_imq("quantize" + args);
    EXPECT_EQ(q.rc, 0) << q.err;
  }
  if (*c.base_log) {
    const auto r = test::run_imq("perplexity" + args_of(dir + c.base_log, tmp) + cpu);
    EXPECT_EQ(r.rc, 0) << r.err;
  }
  const auto r = test::run_imq("perplexity" + args_of(dir + c.q_log, tmp) + cpu);
  EXPECT_EQ(r.rc, 0) << r.err;
  return r.out;
}

class QuantKld : public ::testing::TestWithParam<KldCase> {};

TEST_P(QuantKld, MatchesLlamaPerplexityStatistics) {
  if (!quant::find_codec(GgmlType::Q4_K) || !quant::find_codec(GgmlType::Q6_K))
    GTEST_SKIP() << "K-quant codecs not available yet";
  const KldCase& c = GetParam();
  IMQ_NEED_SHARED(log, std::string("reference/") + c.dir + "/" + c.q_log);
  test::TempDir tmp;
  const std::string text = test::read_all(log);
  const std::string out = run_kld_case(c, text, tmp);
  compare_with_log(out, text, c.ppl_rel, c.pct_rel);
}

// The other architectures (BF16 models, logs of an AVX512-BF16 build): the quantized model is
// written by imq quantize (byte-identical to llama-quantize's, tests/quantize), and the mean KLD
// agrees to 1 % (the acceptance criterion). Measured: -0.38 % (qwen2), +0.08 % (qwen3), +0.13 %
// (qwen3moe), -0.22 % (gemma3). Per-chunk perplexities and per-token percentiles are not
// compared: these random models turn last-bit differences into 0.1-0.3 % (DESIGN.md).
class ArchKld : public ::testing::TestWithParam<KldCase> {};

TEST_P(ArchKld, MeanKldMatchesLlamaPerplexity) {
  const KldCase& c = GetParam();
  IMQ_NEED_SHARED(log, std::string("reference/") + c.dir + "/" + c.q_log);
  test::TempDir tmp;
  const std::string text = test::read_all(log);
  const auto got = test::kld_statistics(run_kld_case(c, text, tmp)), want = test::kld_statistics(text);
  const char* k = "Mean    KLD";
  ASSERT_TRUE(want.count(k) && got.count(k));
  EXPECT_GT(want.at(k), 0.1);  // quantization moves these models a lot: the value is not noise
  EXPECT_NEAR(got.at(k), want.at(k), 0.01 * want.at(k));
  std::printf("mean KLD %.6f vs %.6f (%+.2f %%)\n", got.at(k), want.at(k), 100 * (got.at(k) / want.at(k) - 1));
}

INSTANTIATE_TEST_SUITE_P(
    Archs, ArchKld,
    ::testing::Values(
        KldCase{"archs/qwen2", "kld-base-bf16-wiki-c256.log", "kld-q-Q4_K_M-imat-wiki-c256.log", 0, "q-Q4_K_M-imat.log"},
        KldCase{"archs/qwen3", "kld-base-bf16-wiki-c256.log", "kld-q-Q4_K_M-imat-wiki-c256.log", 0, "q-Q4_K_M-imat.log"},
        KldCase{"archs/qwen3moe", "kld-base-bf16-wiki-c256.log", "kld-q-Q4_K_M-imat-wiki-c256.log", 0, "q-Q4_K_M-imat.log"},
        KldCase{"archs/gemma3", "kld-base-bf16-wiki-c256.log", "kld-q-Q4_K_M-imat-wiki-c256.log", 0, "q-Q4_K_M-imat.log"}),
    [](const auto& info) { return test::gtest_name(std::string(info.param.dir)); });

// IQ2_XXS on the other architectures: the same criterion, the model written by imq quantize
// with the i-quant codecs (byte-identical to llama-quantize's, tests/quantize) and evaluated
// through the generic kernels (rows decoded to float, activations rounded to Q8_K first).
// Measured: -0.00 % (qwen2), -0.08 % (qwen3), -0.15 % (qwen3moe), -0.14 % (gemma3).
INSTANTIATE_TEST_SUITE_P(
    ArchsIQuant, ArchKld,
    ::testing::Values(
        KldCase{"archs/qwen2", "kld-base-bf16-wiki-c256.log", "kld-q-IQ2_XXS-imat-wiki-c256.log", 0, "q-IQ2_XXS-imat.log"},
        KldCase{"archs/qwen3", "kld-base-bf16-wiki-c256.log", "kld-q-IQ2_XXS-imat-wiki-c256.log", 0, "q-IQ2_XXS-imat.log"},
        KldCase{"archs/qwen3moe", "kld-base-bf16-wiki-c256.log", "kld-q-IQ2_XXS-imat-wiki-c256.log", 0, "q-IQ2_XXS-imat.log"},
        KldCase{"archs/gemma3", "kld-base-bf16-wiki-c256.log", "kld-q-IQ2_XXS-imat-wiki-c256.log", 0, "q-IQ2_XXS-imat.log"}),
    [](const auto& info) { return test::gtest_name(std::string(info.param.dir)); });

INSTANTIATE_TEST_SUITE_P(
    Models, QuantKld,
    ::testing::Values(
        KldCase{"stories260K", "", "kld-q-Q4_K_M-imat-tinystories-c128.log", 0.001},
        KldCase{"stories260K", "", "kld-q-Q4_K_M-noimat-tinystories-c128.log", 0.001},
        KldCase{"dense-spm4k", "kld-base-f32-wiki-c256.log", "kld-q-Q4_K_M-imat-wiki-c256.log", 0.001},
        KldCase{"dense-spm4k", "kld-base-f32-wiki-c256.log", "kld-q-Q4_K_M-noimat-wiki-c256.log", 0.001},
        KldCase{"moe-gpt2bpe", "kld-base-f32-wiki-c256.log", "kld-q-Q4_K_M-imat-wiki-c256.log", 0.001},
        KldCase{"moe-gpt2bpe", "kld-base-f32-wiki-c256.log", "kld-q-Q4_K_M-noimat-wiki-c256.log", 0.001}),
    [](const auto& info) { return test::gtest_name(std::string(info.param.dir) + "_" + info.param.q_log); });

// The dense and MoE models' i-quant mixes (logs of an AVX-512 build; the base logits recomputed
// there, as README says): imq quantize writes the model (byte-identical, tests/quantize) and
// evaluates it through the generic kernels (rows decoded to float, activations rounded to Q8_K
// first), not ggml's integer i-quant products. Measured: mean KLD within 0.08 %, every chunk's
// PPL within 0.033 %; the MoE percentiles up to 1.5 % off (pct_rel).
INSTANTIATE_TEST_SUITE_P(
    IQuants, QuantKld,
    ::testing::Values(
        KldCase{"dense-spm4k", "kld-base-f32-wiki-c256.log", "kld-q-IQ2_XXS-imat-wiki-c256.log", 0.001, "q-IQ2_XXS-imat.log", 0.02},
        KldCase{"dense-spm4k", "kld-base-f32-wiki-c256.log", "kld-q-IQ2_M-imat-wiki-c256.log", 0.001, "q-IQ2_M-imat.log", 0.02},
        KldCase{"dense-spm4k", "kld-base-f32-wiki-c256.log", "kld-q-IQ3_XXS-imat-wiki-c256.log", 0.001, "q-IQ3_XXS-imat.log", 0.02},
        KldCase{"dense-spm4k", "kld-base-f32-wiki-c256.log", "kld-q-IQ3_M-imat-wiki-c256.log", 0.001, "q-IQ3_M-imat.log", 0.02},
        KldCase{"moe-gpt2bpe", "kld-base-f32-wiki-c256.log", "kld-q-IQ2_XXS-imat-wiki-c256.log", 0.001, "q-IQ2_XXS-imat.log", 0.02},
        KldCase{"moe-gpt2bpe", "kld-base-f32-wiki-c256.log", "kld-q-IQ2_M-imat-wiki-c256.log", 0.001, "q-IQ2_M-imat.log", 0.02},
        KldCase{"moe-gpt2bpe", "kld-base-f32-wiki-c256.log", "kld-q-IQ3_XXS-imat-wiki-c256.log", 0.001, "q-IQ3_XXS-imat.log", 0.02},
        KldCase{"moe-gpt2bpe", "kld-base-f32-wiki-c256.log", "kld-q-IQ3_M-imat-wiki-c256.log", 0.001, "q-IQ3_M-imat.log", 0.02}),
    [](const auto& info) { return test::gtest_name(std::string(info.param.dir) + "_" + info.param.q_log); });

}  // namespace
}  // namespace imq
