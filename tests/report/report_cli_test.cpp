// imq imatrix --report: the command writes the page (one file, or two compared), and refuses
// files of different models with one line, leaving no output behind.
#include <gtest/gtest.h>

#include <filesystem>

#include "test_util.h"

namespace {

namespace fs = std::filesystem;

TEST(ReportCli, StatsReportOfOneFile) {
  IMQ_NEED_SHARED(moe, "reference/moe-gpt2bpe/imatrix-calib-c256.gguf");
  imq::test::TempDir dir;
  std::string out = dir.file("r.html");
  auto r = imq::test::run_imq("imatrix stats " + moe + " --report " + out);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;  // the report replaces the tables
  EXPECT_NE(r.err.find("wrote the report to"), std::string::npos) << r.err;
  std::string page = imq::test::read_all(out);
  EXPECT_EQ(page.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(page.find("id=\"imq-data\""), std::string::npos);
  EXPECT_NE(page.find("blk.3.ffn_down_exps.weight"), std::string::npos);
  EXPECT_EQ(page.find("id=\"sec-compare\""), std::string::npos);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), {}), 1);  // no temporary left
}

TEST(ReportCli, LegacyDatInput) {
  IMQ_NEED_SHARED(dat, "reference/dense-spm4k/imatrix-calib-c256.dat");
  imq::test::TempDir dir;
  auto r = imq::test::run_imq("imatrix --in-file " + dat + " --report " + dir.file("r.html") + " -o " +
                              dir.file("combined.gguf"));
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(imq::test::read_all(dir.file("r.html")).find("blk.0.ffn_down.weight"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir.file("combined.gguf")));  // a report, not a combine run
}

TEST(ReportCli, TwoInputsAreCompared) {
  IMQ_NEED_SHARED(a, "reference/moe-gpt2bpe/imatrix-calib-c256.gguf");
  IMQ_NEED_SHARED(b, "reference/moe-gpt2bpe/imatrix-calib-c256-merged-self.gguf");
  imq::test::TempDir dir;
  for (std::string args : {"imatrix --in-file " + a + " --in-file " + b + " --report " + dir.file("1.html"),
                           "imatrix stats " + a + " --compare " + b + " --report " + dir.file("2.html")}) {
    auto r = imq::test::run_imq(args);
    ASSERT_EQ(r.rc, 0) << args << "\n" << r.err;
  }
  for (const char* f : {"1.html", "2.html"}) {
    std::string page = imq::test::read_all(dir.file(f));
    EXPECT_NE(page.find("id=\"sec-compare\""), std::string::npos) << f;
    EXPECT_NE(page.find("merged-self.gguf"), std::string::npos) << f;
  }
}

TEST(ReportCli, DifferentModelsIsOneLineError) {
  IMQ_NEED_SHARED(moe, "reference/moe-gpt2bpe/imatrix-calib-c256.gguf");
  IMQ_NEED_SHARED(dense, "reference/dense-spm4k/imatrix-calib-c256.gguf");
  IMQ_NEED_SHARED(codec, "reference/codec256/imatrix-calib-c128.gguf");
  imq::test::TempDir dir;
  std::string out = dir.file("r.html");
  for (const std::string& other : {dense, codec}) {
    auto r = imq::test::run_imq("imatrix stats " + moe + " --compare " + other + " --report " + out);
    EXPECT_NE(r.rc, 0);
    EXPECT_NE(r.err.find("different models"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_FALSE(fs::exists(out));
  }
}

TEST(ReportCli, UsageErrors) {
  IMQ_NEED_SHARED(moe, "reference/moe-gpt2bpe/imatrix-calib-c256.gguf");
  imq::test::TempDir dir;
  auto r = imq::test::run_imq("imatrix stats " + moe + " --compare " + moe);
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("--compare needs --report"), std::string::npos) << r.err;
  r = imq::test::run_imq("imatrix --in-file " + moe + " --in-file " + moe + " --in-file " + moe +
                         " --report " + dir.file("r.html"));
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("two to compare (3 given)"), std::string::npos) << r.err;
  r = imq::test::run_imq("imatrix stats " + moe + " --report " + dir.file("no/dir/r.html"));
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("does not exist"), std::string::npos) << r.err;
}

}  // namespace
