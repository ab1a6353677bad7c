// Statistics against llama-imatrix --show-statistics: the reference .stats.txt is parsed (its
// log prefixes removed); every number per tensor and per layer must agree to 4 significant
// digits, and the whole printed text must be identical. Plus the cases llama.cpp gets wrong:
// empty experts and all-zero entries are shown as such, never as NaN.
#include <gtest/gtest.h>

#include <cmath>
#include <regex>
#include <sstream>

#include <nlohmann/json.hpp>

#include "imatrix_test_util.h"

namespace imq::test {
namespace {

using namespace imq::imatrix;

// The reference output without llama.cpp's log prefixes ("0.00.007.123 I ").
std::string strip_log_prefixes(const std::string& text) {
  static const std::regex prefix(R"(^\d+\.\d+\.\d+\.\d+ [IWE] ?)");
  std::istringstream in(text);
  std::string line, out;
  while (std::getline(in, line)) out += std::regex_replace(line, prefix, "") + "\n";
  return out;
}

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> f;
  std::stringstream ss(line);
  std::string x;
  while (std::getline(ss, x, '\t')) f.push_back(x);
  return f;
}

double num(std::string s) {
  while (!s.empty() && (s.back() == '%' || s.back() == ' ')) s.pop_back();
  return std::stod(s);
}

// Equal to 4 significant digits, or within half a unit of the printed last decimal.
void expect_close(double got, double want, double printed_ulp, const std::string& what) {
  const double tol = std::max(5e-4 * std::fabs(want), 0.5 * printed_ulp);
  EXPECT_NEAR(got, want, tol * 1.0001) << what;
}

class RefStats : public ::testing::TestWithParam<RefImatrix> {};

TEST_P(RefStats, EqualLlamaImatrix) {
  const RefImatrix& r = GetParam();
  IMQ_NEED_SHARED(path, r.base() + ".gguf");
  IMQ_NEED_SHARED(ref_path, r.base() + ".stats.txt");
  const std::string ref = strip_log_prefixes(read_all(ref_path));
  Statistics s = compute_statistics(read_gguf(path));

  // Parse the reference tables: 13 columns per tensor row, 4 per layer row.
  std::vector<std::vector<std::string>> rows, layer_rows;
  std::istringstream in(ref);
  std::string line;
  while (std::getline(in, line)) {
    auto f = split_tabs(line);
    if (f.size() == 13 && f[0].find("Layer") == std::string::npos) rows.push_back(f);
    if (f.size() == 4 && f[0].find("Layer") == std::string::npos) layer_rows.push_back(f);
  }
  ASSERT_EQ(rows.size(), s.tensors.size());
  ASSERT_GT(rows.size(), 0u);
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& f = rows[i];
    const TensorStatistics& t = s.tensors[i];
    const std::string what = t.name;
    EXPECT_EQ(std::stoi(f[0]), t.layer) << what;
    EXPECT_EQ(f[1].substr(0, f[1].find(' ')), t.kind) << what;
    expect_close(t.sum, num(f[2]), 0.01, what + " sum");
    expect_close(t.min, num(f[3]), 1e-4, what + " min");
    expect_close(t.max, num(f[4]), 1e-4, what + " max");
    expect_close(t.mean, num(f[5]), 0.01, what + " mean");
    expect_close(t.stddev, num(f[6]), 0.01, what + " stddev");
    expect_close(t.active, num(f[7]), 0.01, what + " active");
    EXPECT_EQ(t.n, std::stoll(f[8])) << what;
    expect_close(t.entropy, num(f[9]), 1e-4, what + " entropy");
    expect_close(t.entropy_norm, num(f[10]), 0.01, what + " E(norm)");
    expect_close(100 * t.zd, num(f[11]), 0.01, what + " ZD");
    expect_close(t.cossim, num(f[12]), 1e-4, what + " CosSim");
  }
  ASSERT_EQ(layer_rows.size(), s.layers.size());
  for (size_t i = 0; i < layer_rows.size(); ++i) {
    const auto& f = layer_rows[i];
    const LayerStatistics& l = s.layers[i];
    EXPECT_EQ(std::stoi(f[0]), l.layer);
    expect_close(l.sum, num(f[1]), 0.01, "layer sum");
    expect_close(100 * l.zd, num(f[2]), 1e-4, "layer ZD");
    expect_close(l.cossim, num(f[3]), 1e-4, "layer CosSim");
  }
  // Same printf formats, same order: the text is identical.
  EXPECT_EQ(format_statistics(s, r.base() + ".gguf"), ref);
}

INSTANTIATE_TEST_SUITE_P(Reference, RefStats, ::testing::ValuesIn(ref_imatrices()), ref_imatrix_name);
INSTANTIATE_TEST_SUITE_P(Archs, RefStats, ::testing::ValuesIn(arch_imatrices()), ref_imatrix_name);

Imatrix partial_moe() {
  Imatrix m;
  m.chunk_size = 4;
  m.chunk_count = 2;
  // 2 experts x 3 columns; expert 1 never routed.
  m.entries["blk.0.ffn_up_exps.weight"] = {{1, 4, 9, 0, 0, 0}, {2, 0}};
  m.entries["blk.0.attn_q.weight"] = {{0, 0}, {0}};  // no data at all
  m.entries["blk.1.attn_q.weight"] = {{2, 8}, {4}};
  return m;
}

TEST(Stats, EmptyExpertsAreSkippedAndNoDataIsNotNan) {
  Imatrix m = partial_moe();
  Statistics s = compute_statistics(m);
  ASSERT_EQ(s.tensors.size(), 3u);
  const TensorStatistics* up = nullptr;
  const TensorStatistics* q0 = nullptr;
  for (const auto& t : s.tensors) {
    if (t.name == "blk.0.ffn_up_exps.weight") up = &t;
    if (t.name == "blk.0.attn_q.weight") q0 = &t;
  }
  ASSERT_TRUE(up && q0);
  EXPECT_EQ(up->n, 3);  // only the routed expert's columns
  EXPECT_EQ(up->n_empty, 1u);
  EXPECT_FLOAT_EQ(up->sum, 0.5f + 2.0f + 4.5f);
  EXPECT_FLOAT_EQ(up->min, 0.5f);
  EXPECT_FLOAT_EQ(up->max, 4.5f);
  EXPECT_EQ(q0->n, 0);
  EXPECT_EQ(q0->n_empty, 1u);
  for (float v : {q0->sum, q0->mean, q0->stddev, q0->entropy, q0->zd}) EXPECT_FALSE(std::isnan(v));
  const std::string text = format_statistics(s, "x.gguf");
  EXPECT_EQ(text.find("nan"), std::string::npos) << text;
  EXPECT_NE(text.find("no data"), std::string::npos) << text;
  // Layer 0's average only weighs tensors with data.
  ASSERT_EQ(s.layers.size(), 2u);
  EXPECT_FLOAT_EQ(s.layers[0].sum, up->sum);
  // CosSim of blk.1.attn_q against the all-zero blk.0.attn_q is 0, not NaN.
  EXPECT_EQ(s.layers[1].cossim, 0.0f);

  auto issues = coverage_issues(m);
  ASSERT_EQ(issues.size(), 2u);
  EXPECT_NE(describe(issues[1]).find("1 of 2 experts have no data"), std::string::npos) << describe(issues[1]);
}

TEST(Stats, JsonHasEveryTensorAndWarnings) {
  Imatrix m = partial_moe();
  auto j = nlohmann::json::parse(statistics_json(compute_statistics(m), m, "x.gguf"));
  EXPECT_EQ(j["file"], "x.gguf");
  EXPECT_EQ(j["chunk_size"], 4);
  ASSERT_EQ(j["tensors"].size(), 3u);
  EXPECT_EQ(j["warnings"].size(), 2u);
  for (const auto& t : j["tensors"]) {
    if (t["name"] == "blk.0.attn_q.weight") {
      EXPECT_EQ(t["n"], 0);
      EXPECT_FALSE(t.contains("mean"));
    }
    if (t["name"] == "blk.0.ffn_up_exps.weight") {
      EXPECT_EQ(t["empty_slots"], 1);
      EXPECT_FLOAT_EQ(t["sum_act2"].get<float>(), 7.0f);
    }
  }
  EXPECT_EQ(j["layers"].size(), 2u);
}

TEST(Stats, NonFiniteValuesAreCountedNotAveraged) {
  Imatrix m;
  m.chunk_size = 1;
  m.entries["blk.0.attn_q.weight"] = {{1, NAN, 3, INFINITY}, {1}};
  Statistics s = compute_statistics(m);
  ASSERT_EQ(s.tensors.size(), 1u);
  EXPECT_EQ(s.tensors[0].n, 2);
  EXPECT_EQ(s.tensors[0].n_non_finite, 2u);
  EXPECT_FLOAT_EQ(s.tensors[0].sum, 4.0f);
  EXPECT_EQ(coverage_issues(m).at(0).n_non_finite, 2u);
}

}  // namespace
}  // namespace imq::test
