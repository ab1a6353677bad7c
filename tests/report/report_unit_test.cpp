// render_report on a hand-made importance matrix: the page has its sections, and the embedded
// JSON parses and holds numbers recomputed here independently (means, cosine, experts,
// outliers, warnings), with and without a comparison file.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "imatrix/report.h"
#include "imq/error.h"
#include "report/fixtures.h"
#include "test_util.h"
#include "test_util_impl.h"

using imq::imatrix::Imatrix;
using imq::imatrix::ReportOptions;
using nlohmann::json;

namespace {

json embedded_json(const std::string& page) {
  const std::string open = "<script id=\"imq-data\" type=\"application/json\">";
  size_t a = page.find(open);
  EXPECT_NE(a, std::string::npos);
  a += open.size();
  size_t b = page.find("</script>", a);
  EXPECT_NE(b, std::string::npos);
  return json::parse(page.substr(a, b - a));
}

const json& tensor(const json& j, const std::string& name) {
  for (const auto& t : j["tensors"])
    if (t["name"] == name) return t;
  throw std::runtime_error("no tensor " + name);
}

// Mean of sums/count over the slots with count > 0, in double.
double mean_importance(const imq::imatrix::Entry& e) {
  const size_t n = e.sums.size() / e.counts.size();
  double s = 0;
  size_t k_used = 0;
  for (size_t k = 0; k < e.counts.size(); ++k) {
    if (e.counts[k] <= 0) continue;
    ++k_used;
    for (size_t j = 0; j < n; ++j) s += double(e.sums[k * n + j]) / e.counts[k];
  }
  return s / double(n * k_used);
}

double cosine(const std::vector<double>& x, const std::vector<double>& y) {
  double d = 0, a = 0, b = 0;
  for (size_t i = 0; i < x.size(); ++i) d += x[i] * y[i], a += x[i] * x[i], b += y[i] * y[i];
  return d / std::sqrt(a * b);
}

bool has_warning(const json& j, const std::string& tensor, const std::string& level,
                 const std::string& text_part, int file = 0) {
  for (const auto& w : j["warnings"])
    if (w["tensor"] == tensor && w["level"] == level && w["file"] == file &&
        w["text"].get<std::string>().find(text_part) != std::string::npos)
      return true;
  return false;
}

TEST(ReportUnit, PageHasEverySectionAndSelfContained) {
  Imatrix a = imq::test::small_imatrix();
  std::string page = imq::imatrix::render_report(a, nullptr, {});
  for (const char* id : {"id=\"errors\"", "id=\"header\"", "id=\"sec-heatmap\"", "id=\"heatmap-box\"",
                         "id=\"sec-layers\"", "id=\"layer-charts\"", "id=\"sec-dist\"",
                         "id=\"tensor-select\"", "id=\"outliers\"", "id=\"sec-experts\"",
                         "id=\"experts-box\"", "id=\"stats-table\"", "id=\"tooltip\"", "data-ready"})
    EXPECT_NE(page.find(id), std::string::npos) << id;
  EXPECT_EQ(page.find("id=\"sec-compare\""), std::string::npos);
  // Nothing is fetched: no external URL, stylesheet link or script source.
  EXPECT_EQ(page.find("http://"), page.find("http://www.w3.org/2000/svg"));
  EXPECT_EQ(page.find("https://"), std::string::npos);
  EXPECT_EQ(page.find("<link"), std::string::npos);
  EXPECT_EQ(page.find("src="), std::string::npos);
  EXPECT_EQ(page.find("@import"), std::string::npos);

  // A dense-only model has no expert section.
  Imatrix dense;
  dense.entries["blk.0.attn_q.weight"] = imq::test::dense_entry(8, 10, 1, 0);
  EXPECT_EQ(imq::imatrix::render_report(dense, nullptr, {}).find("id=\"sec-experts\""), std::string::npos);
}

TEST(ReportUnit, JsonHoldsHeaderTensorsAndStatistics) {
  Imatrix a = imq::test::small_imatrix();
  json j = embedded_json(imq::imatrix::render_report(a, nullptr, {}));
  ASSERT_EQ(j["files"].size(), 1u);
  EXPECT_EQ(j["files"][0]["datasets"], json::array({"calib-small.txt"}));
  EXPECT_EQ(j["files"][0]["chunk_count"], 3);
  EXPECT_EQ(j["files"][0]["chunk_size"], 64);
  EXPECT_EQ(j["files"][0]["entries"], a.entries.size());
  EXPECT_EQ(j["files"][0]["tokens"], 192);
  EXPECT_EQ(j["tensors"].size(), a.entries.size());
  EXPECT_EQ(j["layers"], json::array({-1, 0, 1, 2}));
  EXPECT_EQ(j["kinds"], json::array({"attn_q", "ffn_gate_inp", "ffn_down", "ffn_up_exps", "output"}));
  EXPECT_TRUE(j["compare"].is_null());

  const auto& q0 = tensor(j, "blk.0.attn_q.weight");
  EXPECT_EQ(q0["layer"], 0);
  EXPECT_EQ(q0["kind"], "attn_q");
  EXPECT_EQ(q0["stats"]["n"], 8);
  EXPECT_NEAR(q0["stats"]["mean"].get<double>(), mean_importance(a.entries["blk.0.attn_q.weight"]), 1e-5);
  EXPECT_EQ(q0["stats"]["cos"], 0.0);  // block 0 has no previous block

  // CosSim: raw sums against the previous block.
  const auto& e1 = a.entries["blk.1.attn_q.weight"].sums;
  const auto& e0 = a.entries["blk.0.attn_q.weight"].sums;
  EXPECT_NEAR(tensor(j, "blk.1.attn_q.weight")["stats"]["cos"].get<double>(),
              cosine({e1.begin(), e1.end()}, {e0.begin(), e0.end()}), 1e-5);

  // MoE: the empty expert is left out of the statistics and reported.
  const auto& up1 = tensor(j, "blk.1.ffn_up_exps.weight");
  EXPECT_EQ(up1["slots"], 4);
  EXPECT_EQ(up1["zero_slots"], 1);
  EXPECT_EQ(up1["stats"]["n"], 24);
  EXPECT_NEAR(up1["stats"]["mean"].get<double>(), mean_importance(a.entries["blk.1.ffn_up_exps.weight"]), 1e-6);
  EXPECT_TRUE(has_warning(j, "blk.1.ffn_up_exps.weight", "warn", "1 of 4 experts have no data (count 0): 2"));
  EXPECT_FALSE(has_warning(j, "blk.0.ffn_up_exps.weight", "warn", "experts"));

  // NaN: flagged; the statistics and the distribution leave it out.
  const auto& q2 = tensor(j, "blk.2.attn_q.weight");
  EXPECT_EQ(q2["nonfinite"], 1);
  EXPECT_EQ(q2["stats"]["n"], 7);
  imq::imatrix::Entry finite = a.entries["blk.2.attn_q.weight"];
  finite.sums.erase(finite.sums.begin() + 3);
  EXPECT_NEAR(q2["stats"]["mean"].get<double>(), mean_importance(finite), 1e-5);
  EXPECT_EQ(q2["curve"]["n"], 7);
  EXPECT_TRUE(has_warning(j, "blk.2.attn_q.weight", "bad", "1 NaN/Inf values"));

  // Zero-count entry: no statistics, a warning, shown as such.
  const auto& out = tensor(j, "output.weight");
  EXPECT_EQ(out["layer"], -1);
  EXPECT_TRUE(out["stats"].is_null());
  EXPECT_TRUE(has_warning(j, "output.weight", "warn", "no data (count 0)"));
  EXPECT_EQ(j["warnings"].size(), 3u);

  // Experts: tokens per expert per layer.
  ASSERT_TRUE(j["experts"].is_object());
  EXPECT_EQ(j["experts"]["n_expert"], 4);
  ASSERT_EQ(j["experts"]["layers"].size(), 3u);
  EXPECT_EQ(j["experts"]["layers"][0]["counts"], json::array({10, 20, 30, 40}));
  EXPECT_EQ(j["experts"]["layers"][1]["counts"], json::array({11, 21, 0, 41}));
  EXPECT_EQ(j["experts"]["layers"][1]["tensor"], "blk.1.ffn_up_exps.weight");
}

TEST(ReportUnit, StatisticsAreTheImatrixModules) {
  Imatrix a = imq::test::small_imatrix();
  json j = embedded_json(imq::imatrix::render_report(a, nullptr, {}));
  const auto stats = imq::imatrix::compute_statistics(a);
  ASSERT_EQ(stats.tensors.size(), j["tensors"].size());
  for (const auto& s : stats.tensors) {
    const auto& t = tensor(j, s.name);
    EXPECT_EQ(t["layer"], s.layer);
    EXPECT_EQ(t["kind"], s.kind);
    if (s.n == 0) {
      EXPECT_TRUE(t["stats"].is_null()) << s.name;
      continue;
    }
    const auto& js = t["stats"];
    EXPECT_EQ(js["n"], s.n);
    for (auto [key, v] : {std::pair<const char*, double>{"sum", s.sum}, {"min", s.min}, {"max", s.max},
                          {"mean", s.mean}, {"std", s.stddev}, {"active", s.active}, {"entropy", s.entropy},
                          {"enorm", s.entropy_norm}, {"zd", 100.0 * s.zd}, {"cos", s.cossim}})
      EXPECT_NEAR(js[key].get<double>(), v, 1e-5 * std::max(1.0, std::fabs(v))) << s.name << " " << key;
  }
}

TEST(ReportUnit, MalformedEntryIsAnError) {
  Imatrix a = imq::test::small_imatrix();
  a.entries["blk.0.attn_q.weight"].sums.push_back(1.0f);  // 9 sums for 1 count is fine...
  a.entries["blk.0.ffn_up_exps.weight"].sums.pop_back();  // ...31 sums for 4 counts is not
  try {
    imq::imatrix::render_report(a, nullptr, {});
    FAIL() << "no error";
  } catch (const imq::Error& e) {
    EXPECT_NE(std::string(e.what()).find("blk.0.ffn_up_exps.weight"), std::string::npos) << e.what();
  }
}

TEST(ReportUnit, DistributionIsDownsampledWithExactOutliers) {
  Imatrix a = imq::test::small_imatrix();
  ReportOptions opt;
  json j = embedded_json(imq::imatrix::render_report(a, nullptr, opt));
  const auto& w = tensor(j, "blk.0.ffn_down.weight");
  EXPECT_EQ(w["ne0"], 2000);
  ASSERT_EQ(w["top"].size(), opt.top_outliers);
  EXPECT_EQ(w["top"][0]["col"], imq::test::kWideOutlierCol);
  EXPECT_EQ(w["top"][0]["value"], imq::test::kWideOutlierValue);
  // Top list is exact: compare with a full sort here.
  std::vector<float> v;
  const auto& e = a.entries["blk.0.ffn_down.weight"];
  for (float s : e.sums) v.push_back(s / e.counts[0]);
  std::sort(v.rbegin(), v.rend());
  for (size_t i = 0; i < opt.top_outliers; ++i)
    EXPECT_FLOAT_EQ(w["top"][i]["value"].get<float>(), v[i]) << i;

  const auto& rank = w["curve"]["rank"];
  const auto& val = w["curve"]["value"];
  EXPECT_EQ(w["curve"]["n"], 2000);
  ASSERT_LE(rank.size(), opt.max_points);
  ASSERT_GE(rank.size(), opt.max_points / 2);
  ASSERT_EQ(rank.size(), val.size());
  EXPECT_EQ(rank.front(), 0);
  EXPECT_EQ(rank.back(), 1999);
  for (size_t i = 1; i < rank.size(); ++i) {
    EXPECT_LT(rank[i - 1].get<int>(), rank[i].get<int>());
    EXPECT_LE(val[i].get<double>(), val[i - 1].get<double>() * (1 + 1e-3));
    EXPECT_NEAR(val[i].get<double>(), v[rank[i].get<size_t>()], v[rank[i].get<size_t>()] * 1e-3);
  }
  uint64_t total = 0;
  for (const auto& c : w["hist"]["counts"]) total += c.get<uint64_t>();
  EXPECT_EQ(total, 2000u);
  EXPECT_EQ(w["hist"]["counts"].size(), opt.hist_bins);
  EXPECT_EQ(w["hist"]["counts"].back(), 1);  // the outlier alone in the top bin
  // The default selection (highest max/mean) is this tensor.
  double best = 0;
  std::string best_name;
  for (const auto& t : j["tensors"])
    if (t.contains("maxmean") && t["maxmean"].is_number() && t["maxmean"].get<double>() > best)
      best = t["maxmean"], best_name = t["name"];
  EXPECT_EQ(best_name, "blk.0.ffn_down.weight");
}

TEST(ReportUnit, ComparisonCosineAndRatio) {
  Imatrix a = imq::test::small_imatrix();
  Imatrix b = a;
  for (float& s : b.entries["blk.0.attn_q.weight"].sums) s *= 2;  // same shape, twice the mean
  auto& r = b.entries["blk.1.attn_q.weight"].sums;
  std::reverse(r.begin(), r.end());
  b.entries.erase("output.weight");
  ReportOptions opt;
  opt.name_a = "a.gguf";
  opt.name_b = "b.gguf";
  std::string page = imq::imatrix::render_report(a, &b, opt);
  EXPECT_NE(page.find("id=\"sec-compare\""), std::string::npos);
  EXPECT_NE(page.find("id=\"compare-table\""), std::string::npos);
  json j = embedded_json(page);
  ASSERT_EQ(j["files"].size(), 2u);
  EXPECT_EQ(j["files"][1]["name"], "b.gguf");
  const json& c = j["compare"];
  EXPECT_EQ(c["name"], "b.gguf");
  EXPECT_EQ(c["only_a"], json::array({"output.weight"}));
  EXPECT_TRUE(c["only_b"].empty());
  EXPECT_EQ(c["rows"].size(), a.entries.size() - 1);
  auto row = [&](const std::string& n) {
    for (const auto& x : c["rows"])
      if (x["name"] == n) return x;
    throw std::runtime_error(n);
  };
  EXPECT_NEAR(row("blk.0.attn_q.weight")["cos"].get<double>(), 1.0, 1e-6);
  EXPECT_NEAR(row("blk.0.attn_q.weight")["ratio"].get<double>(), 2.0, 1e-5);
  EXPECT_NEAR(row("blk.0.ffn_gate_inp.weight")["ratio"].get<double>(), 1.0, 1e-6);
  const auto& s1 = a.entries["blk.1.attn_q.weight"].sums;
  std::vector<double> x(s1.begin(), s1.end()), y(r.begin(), r.end());
  EXPECT_NEAR(row("blk.1.attn_q.weight")["cos"].get<double>(), cosine(x, y), 1e-5);
  EXPECT_LT(row("blk.1.attn_q.weight")["cos"].get<double>(), 0.999);
  EXPECT_TRUE(row("blk.2.attn_q.weight")["cos"].is_null());  // NaN in both
  // The second file's coverage warnings are listed too, tagged file 1.
  EXPECT_TRUE(has_warning(j, "blk.1.ffn_up_exps.weight", "warn", "experts", 1));
}

TEST(ReportUnit, ComparingDifferentModelsIsOneClearError) {
  Imatrix a = imq::test::small_imatrix();
  ReportOptions opt;
  opt.name_a = "a.gguf";
  opt.name_b = "b.gguf";
  auto message = [&](const Imatrix& b) -> std::string {
    try {
      imq::imatrix::render_report(a, &b, opt);
    } catch (const imq::Error& e) {
      return e.what();
    }
    return "";
  };
  Imatrix wider = a;
  wider.entries["blk.1.attn_q.weight"].sums.push_back(1.0f);
  std::string m = message(wider);
  EXPECT_NE(m.find("blk.1.attn_q.weight"), std::string::npos) << m;
  EXPECT_NE(m.find("different models"), std::string::npos) << m;
  EXPECT_NE(m.find("a.gguf"), std::string::npos) << m;
  EXPECT_EQ(m.find('\n'), std::string::npos) << m;

  Imatrix other;
  other.entries["model.layers.0.mlp.up_proj"] = imq::test::dense_entry(8, 1, 1, 0);
  m = message(other);
  EXPECT_NE(m.find("no tensor name in common"), std::string::npos) << m;

  Imatrix few;  // shares 2 of 13 names
  few.entries["blk.0.attn_q.weight"] = a.entries["blk.0.attn_q.weight"];
  few.entries["blk.1.attn_q.weight"] = a.entries["blk.1.attn_q.weight"];
  few.entries["blk.0.ffn_up.weight"] = imq::test::dense_entry(8, 1, 1, 0);
  few.entries["blk.0.ffn_gate.weight"] = imq::test::dense_entry(8, 1, 1, 0);
  m = message(few);
  EXPECT_NE(m.find("only 2 of 13 tensor names in common"), std::string::npos) << m;
}

TEST(ReportUnit, DataCannotBreakOutOfTheScript) {
  Imatrix a = imq::test::small_imatrix();
  a.datasets = {"</script><b class=\"error\">x</b><!--"};
  std::string page = imq::imatrix::render_report(a, nullptr, {});
  EXPECT_EQ(page.find("<b class"), std::string::npos);
  json j = embedded_json(page);
  EXPECT_EQ(j["files"][0]["datasets"][0], a.datasets[0]);
}

TEST(ReportUnit, LargeModelPageStaysSmall) {
  // 80 blocks of a 8192-wide model with a 28672-wide ffn_down: 5.2M columns in all.
  Imatrix a;
  for (int l = 0; l < 80; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    for (const char* k : {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up"})
      a.entries[b + k + ".weight"] = imq::test::dense_entry(8192, 1000, 1.0f + l, l);
    a.entries[b + "ffn_down.weight"] = imq::test::dense_entry(28672, 1000, 0.1f, l);
  }
  std::string page = imq::imatrix::render_report(a, nullptr, {});
  EXPECT_LT(page.size(), 5u << 20) << page.size();
  std::printf("560-tensor report: %zu bytes\n", page.size());
  json j = embedded_json(page);
  EXPECT_EQ(j["tensors"].size(), 560u);
  for (const auto& t : j["tensors"]) EXPECT_LE(t["curve"]["rank"].size(), 512u);
}

TEST(ReportUnit, WriteReportIsAtomic) {
  imq::test::TempDir dir;
  Imatrix a = imq::test::small_imatrix();
  std::string path = dir.file("r.html");
  imq::imatrix::write_report(path, a, nullptr, {});
  std::string expect = imq::imatrix::render_report(a, nullptr, {});
  EXPECT_EQ(imq::test::read_all(path), expect);
  // A failed comparison leaves the old file untouched and no temporary behind.
  Imatrix other;
  other.entries["x.weight"] = imq::test::dense_entry(4, 1, 1, 0);
  EXPECT_THROW(imq::imatrix::write_report(path, a, &other, {}), imq::Error);
  EXPECT_EQ(imq::test::read_all(path), expect);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 1);
  EXPECT_THROW(imq::imatrix::write_report(dir.file("no/such/dir/r.html"), a, nullptr, {}), imq::Error);
}

}  // namespace
