// Byte-exact output: every reference mix is quantized and each tensor's sha256 compared with
// llama-quantize's (*.tensors.tsv); the metadata and offsets with info.tsv; whole files where
// the reference .gguf is shipped. Needs the codecs (legacy, k-quants, i-quants).
#include <gtest/gtest.h>

#include "imq/quantize.h"
#include "reference_cases.h"
#include "common/sha256.h"

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

// Quantizes case `c` to `out`; `imatrix` as in options_for.
void quantize_case(const RefCase& c, const std::string& out, int n_threads, const std::string& imatrix = {}) {
  gguf::File model = gguf::File::open(c.input());
  Plan plan = make_plan(model, options_for(c, imatrix));
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
  expect_same_lines(listing(out), read_all(c.stem() + ".tensors.tsv"), c.stem() + ".tensors.tsv");
  if (c.has_info) {
    RunResult r = run_imq("info --tsv " + out);
    ASSERT_EQ(r.rc, 0) << r.err;
    expect_same_lines(r.out, read_all(c.stem() + ".info.tsv"), c.stem() + ".info.tsv");
  }
  if (c.has_gguf) {
    EXPECT_TRUE(read_all(out) == read_all(c.stem() + ".gguf")) << "whole file differs";
  }
}

INSTANTIATE_TEST_SUITE_P(Reference, ExactReference, ::testing::ValuesIn(reference_cases()),
                         [](const auto& info) { return info.param.label(); });
INSTANTIATE_TEST_SUITE_P(IQuants, ExactReference, ::testing::ValuesIn(iquant_plan_cases()),
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
    EXPECT_TRUE(read_all(dir.file("t1.gguf")) == read_all(dir.file("t3.gguf"))) << c.mix;
  }
}

// A legacy .dat imatrix gives the same bytes as the GGUF it was converted from (dense counts
// and ncall 8 make the means exact); only the recorded file name differs.
TEST(ExactImatrix, LegacyDatGivesSameTensors) {
  const RefCase c{"dense-spm4k", "Q4_K_M", true, false, true, true};
  IMQ_NEED_SHARED(ref, c.stem() + ".tensors.tsv");
  IMQ_NEED_SHARED(dat, c.imatrix_dat());
  InShared cwd;
  TempDir dir;
  quantize_case(c, dir.file("q.gguf"), 2, c.imatrix_dat());
  expect_same_lines(listing(dir.file("q.gguf")), read_all(ref), c.stem() + ".tensors.tsv via .dat");
}

}  // namespace
}  // namespace imq::test
