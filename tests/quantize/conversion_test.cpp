// Conversions that need no reference file: float types round-trip exactly, and an F16 input is
// dequantized to f32 before quantizing (so F16 -> Q8_0 equals F16 -> F32 -> Q8_0).
#include <gtest/gtest.h>

#include <cstring>

#include "imq/quantize.h"
#include "reference_cases.h"

namespace imq::test {
namespace {

using namespace imq::quantize;

void convert(const std::string& in, const std::string& out, FType ft, bool requantize = false) {
  gguf::File model = gguf::File::open(in);
  Options opt;
  opt.ftype = ft;
  opt.allow_requantize = requantize;
  write_quantized(model, make_plan(model, opt), out, 2);
}

bool same_bytes(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size()) == 0;
}

TEST(Conversion, F16ToF32AndBackIsExact) {
  IMQ_NEED_SHARED(f16, "models/dense-spm4k-f16.gguf");
  TempDir d;
  convert(f16, d.file("f32.gguf"), FType::ALL_F32);
  convert(d.file("f32.gguf"), d.file("f16.gguf"), FType::MOSTLY_F16);
  gguf::File a = gguf::File::open(f16), mid = gguf::File::open(d.file("f32.gguf")),
             b = gguf::File::open(d.file("f16.gguf"));
  size_t converted = 0;
  for (const auto& t : a.tensors()) {
    const gguf::TensorInfo& u = b.tensor(t.name);
    EXPECT_EQ(u.type, t.type) << t.name;
    EXPECT_TRUE(same_bytes(a.tensor_data(t), b.tensor_data(u))) << t.name;
    converted += mid.tensor(t.name).type == GgmlType::F32 && t.type == GgmlType::F16;
  }
  EXPECT_EQ(converted, 30u);  // 7 matrices x 4 layers + output + token_embd
  EXPECT_EQ(mid.get_int("general.file_type"), 0);
  EXPECT_EQ(b.get_int("general.file_type"), 1);
}

TEST(Conversion, F16InputIsDequantizedFirst) {
  IMQ_NEED_SHARED(f16, "models/dense-spm4k-f16.gguf");
  TempDir d;
  convert(f16, d.file("f32.gguf"), FType::ALL_F32);
  convert(f16, d.file("a.gguf"), FType::Q8_0);
  convert(d.file("f32.gguf"), d.file("b.gguf"), FType::Q8_0);
  gguf::File a = gguf::File::open(d.file("a.gguf")), b = gguf::File::open(d.file("b.gguf"));
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  for (const auto& t : a.tensors()) {
    const gguf::TensorInfo& u = b.tensor(t.name);
    // Norms keep their input type (F32 in both); every matrix is Q8_0 from the same values.
    EXPECT_EQ(t.type, u.type) << t.name;
    EXPECT_TRUE(same_bytes(a.tensor_data(t), b.tensor_data(u))) << t.name;
  }
  EXPECT_EQ(a.tensor("blk.0.ffn_down.weight").type, GgmlType::Q8_0);
}

// A quantized input is dequantized before requantizing (only with --allow-requantize).
TEST(Conversion, RequantizeDequantizesFirst) {
  IMQ_NEED_SHARED(f32, "models/dense-spm4k-f32.gguf");
  TempDir d;
  convert(f32, d.file("q8.gguf"), FType::Q8_0);
  convert(d.file("q8.gguf"), d.file("back.gguf"), FType::ALL_F32, true);
  convert(d.file("back.gguf"), d.file("q8b.gguf"), FType::Q8_0);
  // Q8_0 of its own dequantized values reproduces the same blocks.
  gguf::File a = gguf::File::open(d.file("q8.gguf")), b = gguf::File::open(d.file("q8b.gguf"));
  for (const auto& t : a.tensors())
    EXPECT_TRUE(same_bytes(a.tensor_data(t), b.tensor_data(b.tensor(t.name)))) << t.name;
  EXPECT_EQ(gguf::File::open(d.file("back.gguf")).tensor("blk.1.attn_q.weight").type,
            GgmlType::F32);
}

}  // namespace
}  // namespace imq::test
