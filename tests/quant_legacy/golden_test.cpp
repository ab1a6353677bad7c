// Byte-exactness against llama-quantize (the acceptance criterion of these codecs):
// codec256 --pure files for every legacy and IQ4 type with and without the imatrix, the Q8_0
// digests of the dense and MoE models, and the F16 models converted from the F32 ones.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include "codec_test_util.h"
#include "common/sha256.h"
#include "imq/quant.h"
#include "test_util.h"

namespace imq {
namespace {

struct Golden {
  const char* type_name;  // as in the reference file names
  GgmlType type;
  bool imatrix;
};

void PrintTo(const Golden& g, std::ostream* os) {
  *os << g.type_name << (g.imatrix ? " with imatrix" : " without imatrix");
}

std::string golden_name(const ::testing::TestParamInfo<Golden>& p) {
  return std::string(p.param.type_name) + (p.param.imatrix ? "_imat" : "_noimat");
}

class Codec256 : public ::testing::TestWithParam<Golden> {};

// Every tensor of the codec type in q-<TYPE>-{imat,noimat}.gguf: our quantization of the
// same-named F32 tensor (with that tensor's imatrix importance, or none) has identical bytes,
// and our dequantization of the reference equals the spec decoder's.
TEST_P(Codec256, QuantizeMatchesLlamaQuantizeBytes) {
  const Golden g = GetParam();
  IMQ_NEED_SHARED(model_path, "models/codec256-f32.gguf");
  IMQ_NEED_SHARED(imatrix_path, "reference/codec256/imatrix-calib-c128.gguf");
  const std::string rel = std::string("reference/codec256/q-") + g.type_name +
                          (g.imatrix ? "-imat.gguf" : "-noimat.gguf");
  IMQ_NEED_SHARED(ref_path, rel);
  const auto model = gguf::File::open(model_path);
  const auto imatrix = gguf::File::open(imatrix_path);
  const auto ref = gguf::File::open(ref_path);
  const quant::Codec& codec = quant::codec(g.type);

  int checked = 0, with_importance = 0;
  for (const auto& t : ref.tensors()) {
    if (t.type != g.type) continue;
    SCOPED_TRACE(t.name);
    const std::vector<float> x = test::read_f32_tensor(model, model.tensor(t.name));
    std::optional<std::vector<float>> importance;
    if (g.imatrix) importance = test::imatrix_importance(imatrix, t.name);
    with_importance += importance.has_value();

    const auto expected = ref.tensor_data(t);
    std::vector<uint8_t> got(expected.size());
    const size_t written = codec.quantize(x.data(), got.data(), t.n_rows(), t.ne[0],
                                          importance ? importance->data() : nullptr);
    ASSERT_EQ(written, expected.size());
    int64_t bad_blocks = 0, first_bad = -1;
    for (size_t b = 0; b < got.size() / codec.type_size; ++b) {
      const size_t off = b * codec.type_size;
      if (std::memcmp(got.data() + off, expected.data() + off, codec.type_size) != 0) {
        if (first_bad < 0) first_bad = int64_t(b);
        ++bad_blocks;
      }
    }
    EXPECT_EQ(bad_blocks, 0) << "of " << got.size() / codec.type_size << " blocks differ, first "
                             << first_bad;

    std::vector<float> y(size_t(t.n_elements()));
    codec.dequantize(expected.data(), y.data(), t.n_elements());
    const std::vector<float> spec = test::spec_decode_all(g.type, expected.data(), t.n_elements());
    EXPECT_EQ(0, std::memcmp(y.data(), spec.data(), y.size() * sizeof(float)));
    ++checked;
  }
  EXPECT_EQ(checked, 9);  // every 2-D weight of codec256 (--pure)
  if (g.imatrix) {
    EXPECT_EQ(with_importance, 7);  // all but token_embd and output
  }
}

INSTANTIATE_TEST_SUITE_P(
    LlamaQuantize, Codec256,
    ::testing::Values(Golden{"Q4_0", GgmlType::Q4_0, false}, Golden{"Q4_0", GgmlType::Q4_0, true},
                      Golden{"Q4_1", GgmlType::Q4_1, false}, Golden{"Q4_1", GgmlType::Q4_1, true},
                      Golden{"Q5_0", GgmlType::Q5_0, false}, Golden{"Q5_0", GgmlType::Q5_0, true},
                      Golden{"Q5_1", GgmlType::Q5_1, false}, Golden{"Q5_1", GgmlType::Q5_1, true},
                      Golden{"Q8_0", GgmlType::Q8_0, false}, Golden{"Q8_0", GgmlType::Q8_0, true},
                      Golden{"IQ4_NL", GgmlType::IQ4_NL, false},
                      Golden{"IQ4_NL", GgmlType::IQ4_NL, true},
                      Golden{"IQ4_XS", GgmlType::IQ4_XS, false},
                      Golden{"IQ4_XS", GgmlType::IQ4_XS, true}),
    golden_name);

// name -> sha256 of the tensors of one type in a `*.tensors.tsv` listing.
std::map<std::string, std::string> digests_of_type(const std::string& tsv,
                                                   const std::string& type) {
  std::map<std::string, std::string> out;
  std::ifstream in(tsv);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string name, type_name, shape, digest;
    if (fields >> name >> type_name >> shape >> digest && type_name == type) out[name] = digest;
  }
  return out;
}

class Q8Digests : public ::testing::TestWithParam<const char*> {};

// llama-quantize Q8_0 of the dense and MoE models (with an imatrix, which Q8_0 ignores).
TEST_P(Q8Digests, MatchReferenceSha256) {
  const std::string model_name = GetParam();
  IMQ_NEED_SHARED(model_path, "models/" + model_name + "-f32.gguf");
  IMQ_NEED_SHARED(tsv, "reference/" + model_name + "/q-Q8_0-imat.tensors.tsv");
  const auto model = gguf::File::open(model_path);
  const auto digests = digests_of_type(tsv, "q8_0");
  ASSERT_GE(digests.size(), 10u);
  const quant::Codec& codec = quant::codec(GgmlType::Q8_0);
  for (const auto& [name, digest] : digests) {
    const auto& t = model.tensor(name);
    const std::vector<float> x = test::read_f32_tensor(model, t);
    std::vector<uint8_t> q(quant::row_size(codec, t.ne[0]) * size_t(t.n_rows()));
    codec.quantize(x.data(), q.data(), t.n_rows(), t.ne[0], nullptr);
    EXPECT_EQ(test::sha256_hex(q), digest) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Models, Q8Digests, ::testing::Values("dense-spm4k", "moe-gpt2bpe"),
                         [](const auto& p) {
                           return std::string(p.param) == "dense-spm4k" ? "dense" : "moe";
                         });

class F16Models : public ::testing::TestWithParam<const char*> {};

// The -f16 models hold the f32 models' weights rounded to F16 (norms stay F32): our F32 -> F16
// gives the same bytes, and F16 -> F32 gives back values within half an F16 step of the
// originals that round to the same F16.
TEST_P(F16Models, ConversionMatchesF16File) {
  const std::string model_name = GetParam();
  IMQ_NEED_SHARED(f32_path, "models/" + model_name + "-f32.gguf");
  IMQ_NEED_SHARED(f16_path, "models/" + model_name + "-f16.gguf");
  const auto f32 = gguf::File::open(f32_path);
  const auto f16 = gguf::File::open(f16_path);
  const quant::Codec& codec = quant::codec(GgmlType::F16);
  int checked = 0;
  for (const auto& t : f16.tensors()) {
    if (t.type != GgmlType::F16) continue;
    SCOPED_TRACE(t.name);
    const std::vector<float> x = test::read_f32_tensor(f32, f32.tensor(t.name));
    const auto expected = f16.tensor_data(t);
    std::vector<uint8_t> got(expected.size());
    ASSERT_EQ(codec.quantize(x.data(), got.data(), t.n_rows(), t.ne[0], nullptr), expected.size());
    EXPECT_EQ(0, std::memcmp(got.data(), expected.data(), got.size()));

    std::vector<float> y(x.size());
    codec.dequantize(expected.data(), y.data(), int64_t(y.size()));
    for (size_t i = 0; i < y.size(); ++i) {
      ASSERT_LE(std::fabs(y[i] - x[i]), std::ldexp(std::fabs(x[i]), -11) + 0x1p-25f) << i;
      ASSERT_EQ(f32_to_f16(y[i]), test::le16(expected.data() + 2 * i)) << i;
    }
    ++checked;
  }
  EXPECT_GE(checked, 9);
}

INSTANTIATE_TEST_SUITE_P(Models, F16Models, ::testing::Values("stories260K", "dense-spm4k"),
                         [](const auto& p) {
                           return std::string(p.param) == "dense-spm4k" ? "dense" : "stories";
                         });

}  // namespace
}  // namespace imq
