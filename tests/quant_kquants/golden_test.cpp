// Byte-exactness against llama-quantize, the acceptance criterion of the K-quant codecs:
// codec256 --pure files of every K type with and without the imatrix, the dense Q4_K_M files,
// and the per-tensor sha256 listings of the other dense and MoE mixes.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "common/sha256.h"
#include "kquant_test_util.h"
#include "test_util.h"
#include "test_util_impl.h"

namespace imq {
namespace {

bool is_kquant(GgmlType type) {
  return type == GgmlType::Q2_K || type == GgmlType::Q3_K ||
         type == GgmlType::Q4_K || type == GgmlType::Q5_K ||
         type == GgmlType::Q6_K;
}

std::optional<std::vector<float>> importance_for(const gguf::File* imatrix, const std::string& name) {
  if (!imatrix) return std::nullopt;
  return test::imatrix_importance(*imatrix, name);
}

struct FileCheck {
  int tensors = 0;          // K-quant tensors compared
  int with_importance = 0;  // of which quantized with an imatrix entry
};

// Every K-quant tensor of the reference GGUF `ref`: our quantization of the same-named F32
// tensor has identical bytes, and our dequantization of the reference equals the spec decoder.
FileCheck check_reference_file(const std::string& model_path, const std::string& ref_path,
                               const std::string* imatrix_path) {
  const auto model = gguf::File::open(model_path);
  const auto ref = gguf::File::open(ref_path);
  std::optional<gguf::File> imatrix;
  if (imatrix_path) imatrix = gguf::File::open(*imatrix_path);
  FileCheck r;
  for (const auto& t : ref.tensors()) {
    if (!is_kquant(t.type)) continue;
    SCOPED_TRACE(t.name + " " + ggml_type_display_name(t.type));
    const quant::Codec& codec = quant::codec(t.type);
    const auto importance = importance_for(imatrix ? &*imatrix : nullptr, t.name);
    r.with_importance += importance.has_value();
    const auto expected = ref.tensor_data(t);
    const std::vector<uint8_t> got = test::quantize_tensor(
        model, model.tensor(t.name), codec, importance ? importance->data() : nullptr);
    EXPECT_EQ(got.size(), expected.size());
    int64_t bad_blocks = 0, first_bad = -1;
    const size_t n_blocks = std::min(got.size(), expected.size()) / codec.type_size;
    for (size_t b = 0; b < n_blocks; ++b) {
      const size_t off = b * codec.type_size;
      if (std::memcmp(got.data() + off, expected.data() + off, codec.type_size) != 0) {
        if (first_bad < 0) first_bad = int64_t(b);
        ++bad_blocks;
      }
    }
    EXPECT_EQ(bad_blocks, 0) << "of " << n_blocks << " blocks differ, first " << first_bad;

    std::vector<float> y(size_t(t.n_elements()));
    codec.dequantize(expected.data(), y.data(), t.n_elements());
    const auto spec = test::spec_decode_k_all(GgmlType(t.type), expected.data(), t.n_elements());
    EXPECT_EQ(0, std::memcmp(y.data(), spec.data(), y.size() * sizeof(float)));
    ++r.tensors;
  }
  return r;
}

struct Golden {
  const char* file_type;  // as in the reference file names
  bool imatrix;
};

void PrintTo(const Golden& g, std::ostream* os) {
  *os << g.file_type << (g.imatrix ? " with imatrix" : " without imatrix");
}

class Codec256 : public ::testing::TestWithParam<Golden> {};

TEST_P(Codec256, QuantizeMatchesLlamaQuantizeBytes) {
  const Golden g = GetParam();
  IMQ_NEED_SHARED(model_path, "models/codec256-f32.gguf");
  IMQ_NEED_SHARED(imatrix_path, "reference/codec256/imatrix-calib-c128.gguf");
  IMQ_NEED_SHARED(ref_path, std::string("reference/codec256/q-") + g.file_type +
                                (g.imatrix ? "-imat.gguf" : "-noimat.gguf"));
  const FileCheck r = check_reference_file(model_path, ref_path, g.imatrix ? &imatrix_path : nullptr);
  EXPECT_EQ(r.tensors, 9);  // every 2-D weight of codec256 (--pure)
  EXPECT_EQ(r.with_importance, g.imatrix ? 7 : 0);  // all but token_embd and output
}

INSTANTIATE_TEST_SUITE_P(
    LlamaQuantize, Codec256,
    ::testing::Values(Golden{"Q2_K", false}, Golden{"Q2_K", true}, Golden{"Q3_K_S", false},
                      Golden{"Q3_K_S", true}, Golden{"Q4_K_S", false}, Golden{"Q4_K_S", true},
                      Golden{"Q5_K_S", false}, Golden{"Q5_K_S", true}, Golden{"Q6_K", false},
                      Golden{"Q6_K", true}),
    [](const auto& p) { return std::string(p.param.file_type) + (p.param.imatrix ? "_imat" : "_noimat"); });

class DenseQ4KM : public ::testing::TestWithParam<bool> {};

// The full Q4_K_M files of the dense model (a mix of Q4_K and Q6_K).
TEST_P(DenseQ4KM, QuantizeMatchesLlamaQuantizeBytes) {
  const bool with_imatrix = GetParam();
  IMQ_NEED_SHARED(model_path, "models/dense-spm4k-f32.gguf");
  IMQ_NEED_SHARED(imatrix_path, "reference/dense-spm4k/imatrix-calib-c256.gguf");
  IMQ_NEED_SHARED(ref_path, std::string("reference/dense-spm4k/q-Q4_K_M-") +
                                (with_imatrix ? "imat.gguf" : "noimat.gguf"));
  const FileCheck r =
      check_reference_file(model_path, ref_path, with_imatrix ? &imatrix_path : nullptr);
  EXPECT_EQ(r.tensors, 30);  // 4 layers x 7 weights + token_embd + output
  EXPECT_EQ(r.with_importance, with_imatrix ? 28 : 0);
}

INSTANTIATE_TEST_SUITE_P(LlamaQuantize, DenseQ4KM, ::testing::Bool(),
                         [](const auto& p) { return p.param ? "imat" : "noimat"; });

// (name, type) -> sha256 of every K-quant tensor in a `*.tensors.tsv` listing.
std::map<std::string, std::pair<std::string, std::string>> kquant_digests(const std::string& tsv) {
  std::map<std::string, std::pair<std::string, std::string>> out;
  std::ifstream in(tsv);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string name, type_name, shape, digest;
    if (!(fields >> name >> type_name >> shape >> digest)) continue;
    if (type_name == "q2_K" || type_name == "q3_K" || type_name == "q4_K" ||
        type_name == "q5_K" || type_name == "q6_K")
      out[name] = {type_name, digest};
  }
  return out;
}

GgmlType type_id(const std::string& name) {
  for (uint32_t id = 10; id <= 14; ++id)
    if (ggml_type_info(GgmlType(id))->name == name) return GgmlType(id);
  throw Error("unknown type " + name);
}

struct Mix {
  const char* model;
  const char* file;  // reference/<model>/<file>.tensors.tsv
};

class MixDigests : public ::testing::TestWithParam<Mix> {};

// The dense and MoE mixes shipped only as listings: sha256 of our bytes for every listed
// K-quant tensor (3-D expert tensors use each expert's importance slice).
TEST_P(MixDigests, MatchReferenceSha256) {
  const Mix m = GetParam();
  const std::string model_name = m.model;
  IMQ_NEED_SHARED(model_path, "models/" + model_name + "-f32.gguf");
  IMQ_NEED_SHARED(imatrix_path, "reference/" + model_name + "/imatrix-calib-c256.gguf");
  IMQ_NEED_SHARED(tsv, "reference/" + model_name + "/" + m.file + ".tensors.tsv");
  const bool with_imatrix = std::string(m.file).ends_with("-imat");
  const auto model = gguf::File::open(model_path);
  const auto imatrix = gguf::File::open(imatrix_path);
  const auto digests = kquant_digests(tsv);
  ASSERT_GE(digests.size(), 20u);
  int with_importance = 0;
  for (const auto& [name, listed] : digests) {
    const auto& [type_name, digest] = listed;
    const auto importance = importance_for(with_imatrix ? &imatrix : nullptr, name);
    with_importance += importance.has_value();
    const auto q = test::quantize_tensor(model, model.tensor(name), quant::codec(type_id(type_name)),
                                         importance ? importance->data() : nullptr);
    EXPECT_EQ(test::sha256_hex(q), digest) << name << " " << type_name;
  }
  if (with_imatrix) {
    EXPECT_GE(with_importance, 20);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Models, MixDigests,
    ::testing::Values(Mix{"dense-spm4k", "q-Q2_K-imat"}, Mix{"dense-spm4k", "q-Q2_K-noimat"},
                      Mix{"dense-spm4k", "q-Q3_K_M-imat"}, Mix{"dense-spm4k", "q-Q3_K_M-noimat"},
                      Mix{"dense-spm4k", "q-Q5_K_M-imat"}, Mix{"dense-spm4k", "q-Q6_K-imat"},
                      Mix{"moe-gpt2bpe", "q-Q2_K-imat"}, Mix{"moe-gpt2bpe", "q-Q2_K-noimat"},
                      Mix{"moe-gpt2bpe", "q-Q3_K_M-imat"}, Mix{"moe-gpt2bpe", "q-Q3_K_M-noimat"},
                      Mix{"moe-gpt2bpe", "q-Q4_K_M-imat"}, Mix{"moe-gpt2bpe", "q-Q4_K_M-noimat"},
                      Mix{"moe-gpt2bpe", "q-Q5_K_M-imat"}, Mix{"moe-gpt2bpe", "q-Q6_K-imat"}),
    [](const auto& p) {
      std::string s = std::string(p.param.model).substr(0, 3) + "_" + p.param.file;
      std::replace(s.begin(), s.end(), '-', '_');
      return s;
    });

}  // namespace
}  // namespace imq
