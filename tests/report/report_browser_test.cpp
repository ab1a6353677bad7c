// The report in a real browser: Debian's Chromium, headless, loads the page from a file and
// dumps the DOM after the script ran. Checks that the script finished (data-ready="1"), raised
// no error, and drew every element the data calls for (one heatmap cell per tensor, the
// per-layer charts, the distribution, expert coverage, comparison).
//
// Without chromium the tests skip, or fail when IMQ_REQUIRE_SHARED=1 (CI installs it).
// IMQ_REPORT_SCREENSHOT=<png> also saves a 1400x2000 screenshot of the MoE report (docs/report.png).
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "imatrix/report.h"
#include "report/fixtures.h"
#include "imq/imatrix.h"
#include "test_util.h"

namespace {

using imq::imatrix::Imatrix;

std::string find_chromium() {
  if (const char* c = std::getenv("IMQ_CHROMIUM"); c && *c) return c;
  for (const char* name : {"chromium", "chromium-browser", "google-chrome"}) {
    std::string cmd = std::string("command -v ") + name + " >/dev/null 2>&1";
    if (std::system(cmd.c_str()) == 0) return name;
  }
  return "";
}

#define NEED_CHROMIUM(var)                                                                      \
  const std::string var = find_chromium();                                                      \
  if (var.empty()) {                                                                            \
    if (::imq::test::shared_required()) FAIL() << "chromium not found (apt-get install chromium)"; \
    GTEST_SKIP() << "chromium not found: install it (apt-get install chromium) to run this test"; \
  }

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// Runs headless chromium on `html_path` with extra `args`; returns stdout.
std::string run_chromium(const std::string& chromium, const imq::test::TempDir& dir,
                         const std::string& html_path, const std::string& args) {
  std::string out = dir.file("stdout.txt");
  std::string cmd = "timeout 120 " + chromium +
                    " --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --disable-background-networking"
                    " --disable-component-update --disable-sync --no-first-run --hide-scrollbars"
                    " --user-data-dir=" + dir.file("profile") + " " + args + " file://" + html_path +
                    " >" + out + " 2>" + dir.file("stderr.txt") + " </dev/null";
  int rc = std::system(cmd.c_str());
  EXPECT_EQ(rc, 0) << cmd << "\n" << read_file(dir.file("stderr.txt"));
  return read_file(out);
}

std::string dump_dom(const std::string& chromium, const Imatrix& a, const Imatrix* b) {
  imq::test::TempDir dir;
  std::string page = dir.file("report.html");
  imq::imatrix::ReportOptions opt;
  opt.name_a = "a.gguf";
  opt.name_b = "b.gguf";
  imq::imatrix::write_report(page, a, b, opt);
  return run_chromium(chromium, dir, page, "--dump-dom");
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + what.size())) ++n;
  return n;
}

// The markup of the element that starts with `open` (an svg or table): up to its closing tag.
std::string element(const std::string& dom, const std::string& open, const std::string& close) {
  size_t a = dom.find(open);
  if (a == std::string::npos) return "";
  size_t b = dom.find(close, a);
  return dom.substr(a, b == std::string::npos ? std::string::npos : b + close.size() - a);
}

// What every rendered report must satisfy; returns the DOM for more checks.
void expect_rendered(const std::string& dom, const Imatrix& a) {
  ASSERT_NE(dom.find("data-ready=\"1\""), std::string::npos) << "the page script did not finish";
  EXPECT_EQ(count(dom, "class=\"error\""), 0u) << element(dom, "<div id=\"errors\"", "</div></div>");
  EXPECT_EQ(count(element(dom, "<svg id=\"heatmap\"", "</svg>"), "class=\"cell"), a.entries.size());
  EXPECT_NE(dom.find("<svg id=\"heatmap-legend\""), std::string::npos);
  const std::string charts = element(dom, "<div class=\"charts\" id=\"layer-charts\"", "</section>");
  for (const char* id : {"chart-sum", "chart-mean", "chart-std", "chart-active", "chart-entropy",
                         "chart-enorm", "chart-zd", "chart-cos"})
    EXPECT_NE(charts.find(std::string("id=\"") + id + "\""), std::string::npos) << id;
  EXPECT_GE(count(charts, "class=\"series\""), 8u);
  EXPECT_GT(count(charts, "<path d=\"M"), 8u);
  EXPECT_EQ(count(element(dom, "<select id=\"tensor-select\"", "</select>"), "<option"),
            a.entries.size() - count(dom, "class=\"cell nodata\""));
  EXPECT_GE(count(element(dom, "<table class=\"data\" id=\"outliers\"", "</table>"), "<tr>"), 2u);
  EXPECT_NE(element(dom, "<div id=\"dist-hist\"", "</svg>").find("class=\"bin\""), std::string::npos);
  EXPECT_NE(element(dom, "<div id=\"dist-curve\"", "</svg>").find("class=\"outlier\""), std::string::npos);
  EXPECT_EQ(count(element(dom, "<table class=\"data\" id=\"stats-table\"", "</table>"), "<tr data-name="),
            a.entries.size());
}

TEST(ReportBrowser, MoeReference) {
  NEED_CHROMIUM(chromium);
  IMQ_NEED_SHARED(path, "reference/moe-gpt2bpe/imatrix-calib-c256.gguf");
  Imatrix a = imq::imatrix::load(path);
  ASSERT_EQ(a.entries.size(), 32u);
  std::string dom = dump_dom(chromium, a, nullptr);
  expect_rendered(dom, a);
  // 4 layers x 4 experts, all with tokens.
  std::string ex = element(dom, "<svg id=\"experts\"", "</svg>");
  EXPECT_EQ(count(ex, "class=\"ecell"), 16u);
  EXPECT_EQ(count(ex, "class=\"ecell zero\""), 0u);
  EXPECT_NE(dom.find("Full coverage"), std::string::npos);
  // 8 kinds in 8 charts.
  EXPECT_EQ(count(element(dom, "<div class=\"charts\" id=\"layer-charts\"", "</section>"), "class=\"series\""), 64u);
  // Default distribution: the highest max/mean (blk.2.ffn_down_exps.weight, max 44.3366, mean 0.66).
  EXPECT_NE(dom.find("data-selected=\"blk.2.ffn_down_exps.weight\""), std::string::npos);
  if (const char* shot = std::getenv("IMQ_REPORT_SCREENSHOT"); shot && *shot) {
    imq::test::TempDir dir;
    std::string page = dir.file("report.html");
    imq::imatrix::ReportOptions opt;
    opt.name_a = "moe-gpt2bpe/imatrix-calib-c256.gguf";
    imq::imatrix::write_report(page, a, nullptr, opt);
    run_chromium(chromium, dir, page, std::string("--window-size=1400,2000 --screenshot=") + shot);
  }
}

TEST(ReportBrowser, DenseReference) {
  NEED_CHROMIUM(chromium);
  IMQ_NEED_SHARED(path, "reference/dense-spm4k/imatrix-calib-c256.gguf");
  Imatrix a = imq::imatrix::load(path);
  ASSERT_EQ(a.entries.size(), 28u);
  std::string dom = dump_dom(chromium, a, nullptr);
  expect_rendered(dom, a);
  EXPECT_EQ(dom.find("id=\"experts\""), std::string::npos);
  EXPECT_EQ(count(element(dom, "<div class=\"charts\" id=\"layer-charts\"", "</section>"), "class=\"series\""), 56u);
}

TEST(ReportBrowser, ComparisonOfTwoReferenceFiles) {
  NEED_CHROMIUM(chromium);
  IMQ_NEED_SHARED(pa, "reference/moe-gpt2bpe/imatrix-calib-c256.gguf");
  IMQ_NEED_SHARED(pb, "reference/moe-gpt2bpe/imatrix-calib-c256-merged-self.gguf");
  Imatrix a = imq::imatrix::load(pa), b = imq::imatrix::load(pb);
  std::string dom = dump_dom(chromium, a, &b);
  expect_rendered(dom, a);
  EXPECT_EQ(count(element(dom, "<table class=\"data\" id=\"compare-table\"", "</table>"), "<td class=\"l mono\">"), 32u);
  for (const char* id : {"compare-cos", "compare-ratio"}) {
    size_t at = dom.find(std::string("id=\"") + id + "\"");
    ASSERT_NE(at, std::string::npos) << id;
    EXPECT_NE(dom.substr(at, dom.find("</svg>", at) - at).find("<path d=\"M"), std::string::npos) << id;
  }
  EXPECT_NE(dom.find("32 tensors compared"), std::string::npos);
}

// Interaction, driven by a script appended to the page: hovering a heatmap cell and a chart
// fills the tooltip, choosing another tensor redraws the distribution, a legend click hides a kind.
TEST(ReportBrowser, TooltipSelectAndLegendWork) {
  NEED_CHROMIUM(chromium);
  Imatrix a = imq::test::small_imatrix();
  std::string page = imq::imatrix::render_report(a, nullptr, {});
  const std::string probe = R"(<script>
(function () {
  const out = {};
  const move = (el) => { const r = el.getBoundingClientRect();
    el.dispatchEvent(new MouseEvent('mousemove', { bubbles: true, clientX: r.left + r.width / 2,
                                                    clientY: r.top + r.height / 2 })); };
  move(document.querySelector('#heatmap rect[data-name="blk.1.ffn_up_exps.weight"]'));
  out.cell = document.getElementById('tooltip').hidden ? 'hidden' : document.getElementById('tooltip').textContent;
  move(document.querySelector('#chart-mean rect[data-tip]'));
  out.chart = document.getElementById('tooltip').textContent;
  const sel = document.getElementById('tensor-select');
  sel.value = 'blk.1.attn_q.weight';
  sel.dispatchEvent(new Event('change'));
  out.rows = document.querySelectorAll('#outliers tbody tr').length;
  out.summary = document.getElementById('dist-summary').textContent;
  document.querySelector('[data-chip="attn_q"]').click();
  out.hidden = document.querySelectorAll('.series.off[data-kind="attn_q"]').length;
  document.body.setAttribute('data-probe', JSON.stringify(out));
})();
</script>
</body>)";
  page.replace(page.rfind("</body>"), 7, probe);
  imq::test::TempDir dir;
  std::ofstream(dir.file("p.html")) << page;
  std::string dom = run_chromium(chromium, dir, dir.file("p.html"), "--dump-dom");
  ASSERT_EQ(count(dom, "class=\"error\""), 0u) << element(dom, "<div id=\"errors\"", "</div></div>");
  size_t at = dom.find("data-probe=\"");
  ASSERT_NE(at, std::string::npos);
  std::string probe_json = dom.substr(at + 12, dom.find('"', at + 12) - at - 12);
  for (auto [from, to] : {std::pair<std::string, std::string>{"&quot;", "\""}, {"&lt;", "<"}, {"&gt;", ">"}, {"&amp;", "&"}})
    for (size_t p = probe_json.find(from); p != std::string::npos; p = probe_json.find(from, p + to.size()))
      probe_json.replace(p, from.size(), to);
  auto r = nlohmann::json::parse(probe_json);
  std::string cell = r["cell"];
  EXPECT_NE(cell.find("blk.1.ffn_up_exps.weight"), std::string::npos) << cell;
  EXPECT_NE(cell.find("3 of 4 with tokens"), std::string::npos) << cell;
  std::string chart = r["chart"];
  EXPECT_NE(chart.find("layer"), std::string::npos) << chart;
  EXPECT_NE(chart.find("ffn_gate_inp"), std::string::npos) << chart;
  EXPECT_EQ(r["rows"], 8);  // blk.1.attn_q.weight has 8 columns, all listed
  EXPECT_EQ(r["summary"].get<std::string>().rfind("blk.1.attn_q.weight:  8 columns", 0), 0u) << r["summary"];
  EXPECT_EQ(r["hidden"], 8);  // attn_q's line hidden in all 8 charts
}

TEST(ReportBrowser, CoverageProblemsAreShown) {
  NEED_CHROMIUM(chromium);
  Imatrix a = imq::test::small_imatrix();
  std::string dom = dump_dom(chromium, a, nullptr);
  expect_rendered(dom, a);
  EXPECT_EQ(count(element(dom, "<svg id=\"experts\"", "</svg>"), "class=\"ecell zero\""), 1u);
  std::string heat = element(dom, "<svg id=\"heatmap\"", "</svg>");
  EXPECT_EQ(count(heat, "class=\"cell nan\""), 1u);     // blk.2.attn_q.weight
  EXPECT_EQ(count(heat, "class=\"cell nodata\""), 1u);  // output.weight
  EXPECT_NE(dom.find("3 coverage warnings"), std::string::npos);
  EXPECT_NE(dom.find("data-selected=\"blk.0.ffn_down.weight\""), std::string::npos);
}

}  // namespace
