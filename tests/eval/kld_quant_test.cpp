// KL divergence of llama.cpp's Q4_K_M models against the F32 base, compared with
// llama-perplexity's statistics blocks (kld-q-*.log) to 1 % relative.
#include <gtest/gtest.h>

#include "common/llama_reference.h"
#include "imq/ggml_types.h"
#include "imq/quant.h"
#include "test_util.h"

namespace imq {
namespace {

// The statistics that are not dominated by a handful of tokens (extreme percentiles and the
// signed mean Δp are: a single flipped token moves them by more than 1 %).
const char* kCompared[] = {"Mean PPL(Q)",  "Mean PPL(base)", "Mean PPL(Q)/PPL(base)",
                           "Mean    KLD",  "99.0%   KLD",    "95.0%   KLD",
                           "90.0%   KLD",  "Median  KLD",    "RMS Δp",
                           "Same top p"};

void compare_with_log(const std::string& out, const std::string& log_text, double rel) {
  const auto got = test::kld_statistics(out), want = test::kld_statistics(log_text);
  for (const char* k : kCompared) {
    ASSERT_TRUE(want.count(k)) << k;
    ASSERT_TRUE(got.count(k)) << k << "\n" << out;
    EXPECT_NEAR(got.at(k), want.at(k), rel * std::abs(want.at(k))) << k;
  }
  const auto tg = test::kld_table(out), tw = test::kld_table(log_text);
  ASSERT_EQ(tg.size(), tw.size());
  for (size_t i = 0; i < tw.size(); ++i) {
    ASSERT_GE(tg[i].size(), 2u);
    EXPECT_EQ(tg[i][0], tw[i][0]);
    EXPECT_NEAR(tg[i][1], tw[i][1], 0.01 * tw[i][1]) << "chunk " << i + 1 << " PPL";
  }
}

class QuantKld : public ::testing::TestWithParam<const char*> {};

// stories260K: llama.cpp's own base file, the exact command of the log.
TEST_P(QuantKld, MatchesLlamaPerplexityStatistics) {
  if (!quant::find_codec(uint32_t(GgmlType::Q4_K)) || !quant::find_codec(uint32_t(GgmlType::Q6_K)))
    GTEST_SKIP() << "K-quant codecs not available yet";
  const std::string rel = std::string("reference/stories260K/") + GetParam();
  IMQ_NEED_SHARED(log, rel);
  const auto cmd = test::reference_command(rel);
  ASSERT_FALSE(cmd.empty());
  std::string args;
  for (size_t i = 1; i < cmd.size(); ++i) {
    const bool path = cmd[i - 1] == "-m" || cmd[i - 1] == "--kl-divergence-base";
    args += " " + (path ? (test::shared_root() / cmd[i]).string() : cmd[i]);
  }
  const auto r = test::run_imq("perplexity" + args);
  ASSERT_EQ(r.rc, 0) << r.err;
  compare_with_log(r.out, test::read_all(log), 0.01);
}

INSTANTIATE_TEST_SUITE_P(Stories, QuantKld,
                         ::testing::Values("kld-q-Q4_K_M-imat-tinystories-c128.log",
                                           "kld-q-Q4_K_M-noimat-tinystories-c128.log"));

}  // namespace
}  // namespace imq
