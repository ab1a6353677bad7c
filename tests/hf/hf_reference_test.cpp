// imq convert against llama.cpp's convert_hf_to_gguf.py (../shared/reference/hf/): every
// tensor's name, type, shape, order and bytes (sha256), and every metadata line of its
// gguf_info_tsv.py listing; and an HF folder used as a model gives what its conversion gives.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "common/sha256.h"
#include "imq/gguf.h"
#include "imq/hf.h"
#include "test_util.h"
#include "test_util_impl.h"

namespace imq::test {
namespace {

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> v;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) v.push_back(l);
  return v;
}

std::string join_ne(const gguf::TensorInfo& t) {
  std::string s;
  for (uint32_t d = 0; d < t.n_dims; ++d) s += (d ? "," : "") + std::to_string(t.ne[d]);
  return s;
}

struct Case {
  std::string model, outtype;
};

class HfReference : public ::testing::TestWithParam<Case> {};

TEST_P(HfReference, TensorsAndMetadataMatchLlamaCpp) {
  const Case& c = GetParam();
  IMQ_NEED_SHARED(dir, "models/hf/" + c.model);
  IMQ_NEED_SHARED(tensors_tsv, "reference/hf/" + c.model + "/" + c.outtype + ".tensors.tsv");
  IMQ_NEED_SHARED(info_tsv, "reference/hf/" + c.model + "/info-" + c.outtype + ".tsv");
  TempDir tmp;
  const std::string out = tmp.file("out.gguf");
  const RunResult r = run_imq("convert " + dir + " " + out + " --outtype " + c.outtype);
  ASSERT_EQ(r.rc, 0) << r.err;

  // Tensors: name, type, shape and data hash, in file order.
  const gguf::File f = gguf::File::open(out);
  const auto want = lines(read_all(tensors_tsv));
  ASSERT_EQ(f.tensors().size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    const auto& t = f.tensors()[i];
    const std::string got = t.name + "\t" + std::string(ggml_type_info(t.type)->name) + "\t" + join_ne(t) + "\t" +
                            sha256_hex(f.tensor_data(t));
    EXPECT_EQ(got, want[i]) << "tensor " << i;
  }

  // Metadata and tensor table as gguf_info_tsv.py prints them (imq info --tsv): every line,
  // the header's sizes and offsets included, except the labels llama.cpp derives from the
  // folder name (general.name), which are compared separately below.
  const RunResult info = run_imq("info --tsv " + out);
  ASSERT_EQ(info.rc, 0) << info.err;
  const auto got = lines(info.out), ref = lines(read_all(info_tsv));
  ASSERT_EQ(got.size(), ref.size());
  for (size_t i = 0; i < ref.size(); ++i) EXPECT_EQ(got[i], ref[i]) << "line " << i;
}

INSTANTIATE_TEST_SUITE_P(All, HfReference,
                         ::testing::Values(Case{"dense-spm4k", "bf16"}, Case{"dense-spm4k", "f16"},
                                           Case{"dense-spm4k", "f32"}, Case{"mixtral-tiny", "bf16"},
                                           Case{"mixtral-tiny", "f16"}, Case{"mixtral-tiny", "f32"}),
                         [](const auto& info) { return gtest_name(info.param.model + "_" + info.param.outtype); });

// The folder's vocabulary is the one of the GGUF it was made from (models/hf/README.md):
// every token, score and type, not only the first eight the listing shows.
TEST(HfVocab, EqualsTheOriginalGgufVocabulary) {
  IMQ_NEED_SHARED(dir, "models/hf/dense-spm4k");
  IMQ_NEED_SHARED(orig, "models/dense-spm4k-f32.gguf");
  const gguf::File a = hf::open_model_file(dir);
  const gguf::File b = gguf::File::open(orig);
  for (const char* k : {"tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type"})
    EXPECT_TRUE(a.get(k) == b.get(k)) << k;
  // Loaded in place, BF16 weights stay BF16 (no rounding) and the file is named by the folder.
  EXPECT_EQ(a.path(), dir);
  EXPECT_EQ(a.tensor("blk.0.attn_q.weight").type, GgmlType::BF16);
  EXPECT_EQ(a.get_int("general.file_type"), 32);
}

// An HF folder wherever a model path goes: the imatrix collected on the folder is the one
// collected on the GGUF converted from it (bf16: what loading the folder keeps), byte for byte.
TEST(HfAsModel, ImatrixEqualsTheConvertedGguf) {
  IMQ_NEED_SHARED(dir, "models/hf/dense-spm4k");
  IMQ_NEED_SHARED(text, "data/calibration_datav3_small.head200.txt");
  TempDir tmp;
  const std::string conv = tmp.file("conv.gguf");
  ASSERT_EQ(run_imq("convert " + dir + " " + conv + " --outtype bf16").rc, 0);
  const std::string common = " -f " + text + " -c 64 --chunks 3 -t 2";
  const RunResult a = run_imq("imatrix -m " + dir + common + " -o " + tmp.file("a.gguf"));
  ASSERT_EQ(a.rc, 0) << a.err;
  const RunResult b = run_imq("imatrix -m " + conv + common + " -o " + tmp.file("b.gguf"));
  ASSERT_EQ(b.rc, 0) << b.err;
  const std::string ia = read_all(tmp.file("a.gguf")), ib = read_all(tmp.file("b.gguf"));
  ASSERT_FALSE(ia.empty());
  EXPECT_TRUE(ia == ib) << "imatrix files differ";
  // info and quantize take the folder too.
  const RunResult info = run_imq("info " + dir);
  EXPECT_EQ(info.rc, 0) << info.err;
  EXPECT_NE(info.out.find("blk.3.attn_q.weight"), std::string::npos);
  const RunResult q = run_imq("quantize " + dir + " " + tmp.file("q.gguf") + " Q8_0 1");
  ASSERT_EQ(q.rc, 0) << q.err;
  const RunResult q2 = run_imq("quantize " + conv + " " + tmp.file("q2.gguf") + " Q8_0 1");
  ASSERT_EQ(q2.rc, 0) << q2.err;
  EXPECT_TRUE(read_all(tmp.file("q.gguf")) == read_all(tmp.file("q2.gguf")));
}

}  // namespace
}  // namespace imq::test
