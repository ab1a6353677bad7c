// `imq imatrix -m MODEL -f TEXT` with the reference commands (README) against llama-imatrix's
// files and logs: the same entries with the same shapes and token counts (per expert too), sums
// within a small relative L2 per tensor, and the printed chunk perplexities within 0.1 %.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include "imatrix_test_util.h"

namespace imq::test {
namespace {

using namespace imq::imatrix;

// llama.cpp keeps the KV cache in F16; imq's engine keeps it in F32. That rounding is the
// largest difference in the activations: measured worst tensors with imq's F32 cache are
// 3.6e-4 (stories260K blk.0.ffn_down), 2.1e-4 (codec256), 1.1e-4 (MoE), 8e-5 (dense-spm4k);
// with K/V rounded to F16 as llama.cpp stores them, 7e-5 for stories260K.
constexpr double kMaxRelL2 = 5e-4;

class RefCollect : public ::testing::TestWithParam<RefImatrix> {};

TEST_P(RefCollect, EqualsLlamaImatrix) {
  const RefImatrix& r = GetParam();
  IMQ_NEED_SHARED(ref_path, r.base() + ".gguf");
  IMQ_NEED_SHARED(log_path, r.base() + ".log");
  IMQ_NEED_SHARED(model, std::string("models/") + r.model + "-f32.gguf");
  IMQ_NEED_SHARED(text, "data/calibration_datav3_small.txt");
  TempDir d;
  const std::string out = d.file("imatrix.gguf");
  auto run = run_imq(fmt::format("imatrix -m {} -f {} -c {} --chunks {} -t 2 -o {}", model, text, r.chunk_size,
                                 r.n_chunks, out));
  ASSERT_EQ(run.rc, 0) << run.err;

  const Imatrix ref = read_gguf(ref_path), got = read_gguf(out);
  EXPECT_EQ(got.chunk_size, ref.chunk_size);
  EXPECT_EQ(got.chunk_count, ref.chunk_count);
  EXPECT_EQ(got.datasets, std::vector<std::string>{text});
  ASSERT_EQ(got.entries.size(), ref.entries.size());
  for (const auto& [name, e] : ref.entries) {
    ASSERT_TRUE(got.entries.count(name)) << name;
    const Entry& g = got.entries.at(name);
    ASSERT_EQ(g.sums.size(), e.sums.size()) << name;
    EXPECT_EQ(g.counts, e.counts) << name;  // token counts, per expert: routing agrees
    EXPECT_LT(rel_l2(g.sums, e.sums), kMaxRelL2) << name;
  }

  const auto want = chunk_ppls(read_all(log_path)), have = chunk_ppls(run.out);
  ASSERT_EQ(want.size(), size_t(r.n_chunks));
  ASSERT_EQ(have.size(), want.size()) << run.out;
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(have[i], want[i], 1e-3 * want[i]) << "chunk " << i + 1;
  EXPECT_NE(run.out.find(fmt::format("Final estimate: PPL = {:.4f}", have.back())), std::string::npos) << run.out;
  EXPECT_NE(run.err.find("coverage: "), std::string::npos) << run.err;
}

INSTANTIATE_TEST_SUITE_P(Reference, RefCollect, ::testing::ValuesIn(ref_imatrices()), ref_imatrix_name);

}  // namespace
}  // namespace imq::test
