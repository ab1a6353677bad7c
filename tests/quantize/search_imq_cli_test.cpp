// `imq quantize --search imq`: the file has the reference's layout (same tensors, types,
// offsets and size; only block values differ), its bytes do not depend on the thread count,
// `imq perplexity` loads and runs it, and tensors the imatrix has no entry for keep the
// reference search's bytes (quantize::tensor_search).
#include <gtest/gtest.h>

#include <algorithm>

#include "imq/gguf.h"
#include "reference_cases.h"

namespace imq::test {
namespace {

TEST(QuantizeSearchImq, SameLayoutThreadIndependentAndRuns) {
  IMQ_NEED_SHARED(model, "models/dense-spm4k-f32.gguf");
  IMQ_NEED_SHARED(imat, "reference/dense-spm4k/imatrix-calib-c256.gguf");
  IMQ_NEED_SHARED(text, "data/wiki.test.raw");
  TempDir d;
  const std::string im = " --imatrix " + imat + " " + model + " ";
  ASSERT_EQ(run_imq("quantize" + im + d.file("ref.gguf") + " Q3_K_M 2").rc, 0);
  const RunResult r1 = run_imq("quantize --search imq" + im + d.file("imq1.gguf") + " Q3_K_M 1");
  ASSERT_EQ(r1.rc, 0) << r1.err;
  ASSERT_EQ(run_imq("quantize --search imq" + im + d.file("imq2.gguf") + " Q3_K_M 2").rc, 0);
  const std::string b1 = read_all(d.file("imq1.gguf")), b2 = read_all(d.file("imq2.gguf"));
  EXPECT_EQ(b1, b2) << "--search imq output depends on the thread count";

  const auto ref = gguf::File::open(d.file("ref.gguf"));
  const auto imq = gguf::File::open(d.file("imq1.gguf"));
  ASSERT_EQ(ref.tensors().size(), imq.tensors().size());
  size_t differing = 0;
  for (size_t i = 0; i < ref.tensors().size(); ++i) {
    const auto& a = ref.tensors()[i];
    const auto& b = imq.tensors()[i];
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.type, b.type);
    EXPECT_EQ(a.offset, b.offset);
    const auto da = ref.tensor_data(a), db = imq.tensor_data(b);
    ASSERT_EQ(da.size(), db.size());
    const bool same = std::equal(da.begin(), da.end(), db.begin());
    differing += !same;
    // No imatrix entry (the imatrix tool sees neither): the reference search, byte for byte.
    if (a.name == "token_embd.weight" || a.name == "output.weight") {
      EXPECT_TRUE(same) << a.name << " without importance left the reference search";
    }
  }
  EXPECT_GT(differing, 0u) << "imq search changed no tensor";
  EXPECT_EQ(read_all(d.file("ref.gguf")).size(), b1.size());

  const RunResult p = run_imq("perplexity -m " + d.file("imq1.gguf") + " -f " + text +
                              " -c 128 --chunks 2 -t 2");
  ASSERT_EQ(p.rc, 0) << p.err;
  const auto at = p.out.find("Final estimate: PPL = ");
  ASSERT_NE(at, std::string::npos) << p.out;
  const double ppl = std::stod(p.out.substr(at + 22));
  EXPECT_TRUE(ppl > 1 && ppl < 1e6) << ppl;
}

// Without any imatrix the fallback does not apply: --search imq still searches every tensor,
// the token embedding included.
TEST(QuantizeSearchImq, WithoutImatrixTheEmbeddingIsSearched) {
  IMQ_NEED_SHARED(model, "models/dense-spm4k-f32.gguf");
  TempDir d;
  const std::string args = " " + model + " ";
  ASSERT_EQ(run_imq("quantize" + args + d.file("ref.gguf") + " Q2_K 2").rc, 0);
  const RunResult r = run_imq("quantize --search imq" + args + d.file("imq.gguf") + " Q2_K 2");
  ASSERT_EQ(r.rc, 0) << r.err;
  const auto ref = gguf::File::open(d.file("ref.gguf"));
  const auto imq = gguf::File::open(d.file("imq.gguf"));
  const auto da = ref.tensor_data(ref.tensor("token_embd.weight"));
  const auto db = imq.tensor_data(imq.tensor("token_embd.weight"));
  ASSERT_EQ(da.size(), db.size());
  EXPECT_FALSE(std::equal(da.begin(), da.end(), db.begin()));
}

}  // namespace
}  // namespace imq::test
