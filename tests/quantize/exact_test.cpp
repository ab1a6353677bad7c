// Byte-exact output: every reference mix is quantized and each tensor's sha256 compared with
// llama-quantize's (*.tensors.tsv); the metadata and offsets with info.tsv; whole files where
// the reference .gguf is shipped. Needs the codecs (legacy, k-quants, IQ4).
#include <gtest/gtest.h>

#include "imq/quantize.h"
#include "reference_cases.h"
#include "sha256.h"

namespace imq::test {
namespace {

using namespace imq::quantize;

std::string listing(const std::string& path) {
  gguf::File f = gguf::File::open(path);
  std::string s;
  for (const auto& t : f.tensors()) {
    std::string shape;
    for (uint32_t d = 0; d < t.n_dims; ++d) shape += (d ? "," : "") + std::to_string(t.ne[d]);
    s += t.name + "\t" + std::string(ggml_type_info(t.type)->name) + "\t" + shape + "\t" +
         sha256_hex(f.tensor_data(t)) + "\n";
  }
  return s;
}

void expect_same_lines(const std::string& got, const std::string& want, const std::string& what) {
  auto g = split_lines(got), w = split_lines(want);
  for (size_t i = 0; i < std::min(g.size(), w.size()); ++i) EXPECT_EQ(g[i], w[i]) << what << ": line " << i + 1;
  EXPECT_EQ(g.size(), w.size()) << what << ": line count";
}

void quantize_case(const RefCase& c, const std::string& out, int n_threads) {
  gguf::File model = gguf::File::open(c.input());
  Options opt;
  opt.ftype = parse_ftype(c.mix).ftype;
  if (c.imat) opt.imatrix_path = c.imatrix();
  opt.pure = c.pure;
  Plan plan = make_plan(model, opt);
  write_quantized(model, plan, out, n_threads);
  ASSERT_EQ(std::filesystem::file_size(out), plan.file_size);
}

class ExactReference : public ::testing::TestWithParam<RefCase> {};

TEST_P(ExactReference, TensorDataEqualsLlamaQuantize) {
  const RefCase& c = GetParam();
  IMQ_NEED_SHARED(ref_path, c.stem() + ".tensors.tsv");
  IMQ_NEED_SHARED(model_path, c.input());
  InShared cwd;
  TempDir dir;
  const std::string out = dir.file("q.gguf");
  quantize_case(c, out, 2);
  expect_same_lines(listing(out), read_text(c.stem() + ".tensors.tsv"), c.stem() + ".tensors.tsv");
  if (c.has_info) {
    RunResult r = run_imq("info --tsv " + out);
    ASSERT_EQ(r.rc, 0) << r.err;
    expect_same_lines(r.out, read_text(c.stem() + ".info.tsv"), c.stem() + ".info.tsv");
  }
  if (c.has_gguf) {
    EXPECT_TRUE(read_text(out) == read_text(c.stem() + ".gguf")) << "whole file differs";
  }
}

INSTANTIATE_TEST_SUITE_P(Reference, ExactReference, ::testing::ValuesIn(reference_cases()),
                         [](const auto& info) { return info.param.label(); });

// Rows are split over threads; the bytes must not depend on how.
TEST(ExactThreads, OutputIndependentOfThreadCount) {
  IMQ_NEED_SHARED(model_path, "models/moe-gpt2bpe-f32.gguf");
  InShared cwd;
  for (RefCase c : {RefCase{"moe-gpt2bpe", "Q5_1", true, false, false, false},
                    RefCase{"moe-gpt2bpe", "Q3_K_M", true, false, true, false}}) {
    TempDir dir;
    quantize_case(c, dir.file("t1.gguf"), 1);
    quantize_case(c, dir.file("t3.gguf"), 3);
    EXPECT_TRUE(read_text(dir.file("t1.gguf")) == read_text(dir.file("t3.gguf"))) << c.mix;
  }
}

// A legacy .dat imatrix gives the same bytes as the GGUF it was converted from (dense counts
// and ncall 8 make the means exact); only the recorded file name differs.
TEST(ExactImatrix, LegacyDatGivesSameTensors) {
  IMQ_NEED_SHARED(ref, "reference/dense-spm4k/q-Q4_K_M-imat.tensors.tsv");
  IMQ_NEED_SHARED(dat, "reference/dense-spm4k/imatrix-calib-c256.dat");
  InShared cwd;
  gguf::File model = gguf::File::open("models/dense-spm4k-f32.gguf");
  Options opt;
  opt.ftype = FType::Q4_K_M;
  opt.imatrix_path = "reference/dense-spm4k/imatrix-calib-c256.dat";
  Plan plan = make_plan(model, opt);
  TempDir dir;
  write_quantized(model, plan, dir.file("q.gguf"), 2);
  expect_same_lines(listing(dir.file("q.gguf")), read_text("reference/dense-spm4k/q-Q4_K_M-imat.tensors.tsv"),
                    "q-Q4_K_M-imat via .dat");
}

}  // namespace
}  // namespace imq::test
