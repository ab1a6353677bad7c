// `imq imatrix` without a model: merge, convert and statistics through both spellings
// (llama-imatrix's flags and the short subcommands) reproduce llama-imatrix's files and tables;
// bad input gives one error line, exit 1 and no output file.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "imatrix_test_util.h"
#include "imq/error.h"

namespace imq::test {
namespace {

namespace fs = std::filesystem;
using namespace imq::imatrix;

size_t count_lines(const std::string& s) { return size_t(std::count(s.begin(), s.end(), '\n')); }

void expect_one_line_error(const RunResult& r, const std::string& needle) {
  EXPECT_EQ(r.rc, 1) << r.out << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(count_lines(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "want '" << needle << "' in: " << r.err;
}

void expect_same_file(const std::string& got, const std::string& want) {
  const std::string a = read_all(got), b = read_all(want);
  EXPECT_FALSE(a.empty()) << got;
  EXPECT_EQ(first_difference(a, b), -1) << got << " vs " << want;
}

std::string ref(const std::string& model, int c, const std::string& ext) {
  return shared_file("reference/" + model + "/imatrix-calib-c" + std::to_string(c) + ext);
}

TEST(Cli, MergeBothSpellings) {
  IMQ_NEED_SHARED(in, "reference/moe-gpt2bpe/imatrix-calib-c256.gguf");
  const std::string want = ref("moe-gpt2bpe", 256, "-merged-self.gguf");
  TempDir d;
  auto r = run_imq("imatrix merge " + in + " " + in + " -o " + d.file("a.gguf"));
  ASSERT_EQ(r.rc, 0) << r.err;
  expect_same_file(d.file("a.gguf"), want);
  // llama-imatrix's spelling (without -m), repeated and comma-separated --in-file.
  r = run_imq("imatrix --in-file " + in + "," + in + " -c 256 -o " + d.file("b.gguf"));
  ASSERT_EQ(r.rc, 0) << r.err;
  expect_same_file(d.file("b.gguf"), want);
  EXPECT_NE(r.err.find("combining precomputed matrices only"), std::string::npos) << r.err;
  r = run_imq("imatrix --in-file " + in + " --in-file " + in + " -lv 0 -o " + d.file("c.gguf"));
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.err, "");
  expect_same_file(d.file("c.gguf"), want);
}

TEST(Cli, ConvertBothWays) {
  IMQ_NEED_SHARED(gguf, "reference/stories260K/imatrix-calib-c128.gguf");
  IMQ_NEED_SHARED(dat, "reference/stories260K/imatrix-calib-c128.dat");
  TempDir d;
  // The chunk size comes from the GGUF file (llama-imatrix would need -c 128).
  auto r = run_imq("imatrix convert " + gguf + " -o " + d.file("a.dat"));
  ASSERT_EQ(r.rc, 0) << r.err;
  expect_same_file(d.file("a.dat"), dat);
  r = run_imq("imatrix --in-file " + gguf + " --output-format dat -o " + d.file("b.bin"));
  ASSERT_EQ(r.rc, 0) << r.err;
  expect_same_file(d.file("b.bin"), dat);
  // .dat -> GGUF -> .dat is exact; the GGUF has the chunk size given with -c.
  r = run_imq("imatrix convert " + dat + " -c 128 -o " + d.file("c.gguf"));
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(read_gguf(d.file("c.gguf")).chunk_size, 128u);
  r = run_imq("imatrix convert " + d.file("c.gguf") + " -o " + d.file("d.dat"));
  ASSERT_EQ(r.rc, 0) << r.err;
  expect_same_file(d.file("d.dat"), dat);
  // Relabelling with another -c is allowed, with a warning (llama-imatrix's behaviour).
  r = run_imq("imatrix convert " + gguf + " -c 512 -o " + d.file("e.gguf"));
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("warning: "), std::string::npos) << r.err;
  EXPECT_EQ(read_gguf(d.file("e.gguf")).chunk_count, 2u);  // 1024 tokens / 512
}

TEST(Cli, StatisticsBothSpellingsAndJson) {
  IMQ_NEED_SHARED(in, "reference/dense-spm4k/imatrix-calib-c256.gguf");
  IMQ_NEED_SHARED(stats, "reference/dense-spm4k/imatrix-calib-c256.stats.txt");
  // The reference table without its log prefixes, and with our path in the title line.
  std::string want;
  {
    std::istringstream s(read_all(stats));
    std::string line;
    while (std::getline(s, line)) {
      const size_t p = line.find(" I ");
      if (p != std::string::npos && p < 16) line = line.substr(p + 3);
      if (line == " I") line.clear();
      want += line + "\n";
    }
    const std::string old = "reference/dense-spm4k/imatrix-calib-c256.gguf";
    want.replace(want.find(old), old.size(), in);
  }
  auto r = run_imq("imatrix stats " + in);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, want);
  r = run_imq("imatrix -m unused.gguf --in-file " + in + " --show-statistics");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, want);
  r = run_imq("imatrix stats " + in + " --json");
  ASSERT_EQ(r.rc, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["tensors"].size(), 28u);
  EXPECT_EQ(j["layers"].size(), 4u);
  EXPECT_EQ(j["chunk_size"], 256);
}

TEST(Cli, CoverageWarningsAndNan) {
  TempDir d;
  Imatrix m;
  m.chunk_size = 4;
  m.datasets = {"t.txt"};
  m.entries["blk.0.ffn_up_exps.weight"] = {{1, 2, 0, 0}, {4, 0}};
  m.entries["blk.0.attn_q.weight"] = {{0, 0}, {0}};
  write_gguf(m, d.file("partial.gguf"));
  auto r = run_imq("imatrix stats " + d.file("partial.gguf"));
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("warning: blk.0.ffn_up_exps.weight: 1 of 2 experts have no data"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("no data"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("nan"), std::string::npos) << r.out;
  // .dat cannot hold an entry without data: it is left out with a warning.
  r = run_imq("imatrix convert " + d.file("partial.gguf") + " -o " + d.file("p.dat"));
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("blk.0.attn_q.weight has no data"), std::string::npos) << r.err;
  ReadOptions ro;
  ro.chunk_size = 4;
  EXPECT_EQ(read_dat(d.file("p.dat"), ro).entries.size(), 1u);

  // A NaN written by some other tool: statistics warn, merging refuses.
  std::string bytes = read_all(d.file("partial.gguf"));
  const float one = 1.0f, nan = NAN;
  const size_t at = bytes.rfind(std::string(reinterpret_cast<const char*>(&one), 4));
  ASSERT_NE(at, std::string::npos);
  bytes.replace(at, 4, std::string(reinterpret_cast<const char*>(&nan), 4));
  write_bytes(d.file("nan.gguf"), bytes);
  r = run_imq("imatrix stats " + d.file("nan.gguf"));
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("NaN/Inf"), std::string::npos) << r.err;
  r = run_imq("imatrix merge " + d.file("nan.gguf") + " -o " + d.file("out.gguf"));
  expect_one_line_error(r, "is nan");
  EXPECT_FALSE(fs::exists(d.file("out.gguf")));
}

TEST(Cli, BadInputOneLineNoOutput) {
  IMQ_NEED_SHARED(stories, "reference/stories260K/imatrix-calib-c128.gguf");
  IMQ_NEED_SHARED(dense, "reference/dense-spm4k/imatrix-calib-c256.gguf");
  IMQ_NEED_SHARED(codec, "reference/codec256/imatrix-calib-c128.gguf");
  TempDir d;
  const std::string out = d.file("out.gguf");
  write_bytes(d.file("empty.dat"), "");
  write_bytes(d.file("trunc.gguf"), read_all(stories).substr(0, 1000));
  expect_one_line_error(run_imq("imatrix merge " + d.file("empty.dat") + " -o " + out), "empty file");
  expect_one_line_error(run_imq("imatrix merge " + stories + " " + d.file("trunc.gguf") + " -o " + out),
                        d.file("trunc.gguf"));
  expect_one_line_error(run_imq("imatrix convert " + d.file("missing.gguf") + " -o " + out), "cannot open");
  expect_one_line_error(run_imq("imatrix merge " + stories + " " + dense + " -o " + out), "chunk sizes differ");
  expect_one_line_error(run_imq("imatrix merge " + stories + " " + codec + " -o " + out),
                        "tensor blk.0.attn_k.weight: 64 values in " + stories + " but 256 in " + codec);
  expect_one_line_error(run_imq("imatrix merge " + stories + " " + dense + " --allow-chunk-size-mismatch -o " + out),
                        "tensor blk.0.attn_k.weight");
  expect_one_line_error(run_imq("imatrix --in-file " + stories + " --in-file " + dense + " --show-statistics"),
                        "exactly one input");
  expect_one_line_error(run_imq("imatrix convert " + stories + " -o " + d.file("no/such/dir/x.gguf")),
                        "does not exist");
  expect_one_line_error(run_imq("imatrix -f text.txt -o " + out), "needs a model");
  expect_one_line_error(run_imq("imatrix -o " + out), "nothing to do");
  EXPECT_FALSE(fs::exists(out));
  size_t n_files = 0;
  for (const auto& e : fs::recursive_directory_iterator(d.path())) n_files += e.is_regular_file();
  EXPECT_EQ(n_files, 2u);  // only the inputs this test wrote
}

}  // namespace
}  // namespace imq::test
