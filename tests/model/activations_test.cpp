// Activation rounding (kernels/activations.h): the values equal a round trip through ggml's
// vec_dot formats as imq's own codecs write them (except Q8_0's ties, rounded as ggml's AVX2
// path rounds them), and each weight type picks ggml's format.
#include <gtest/gtest.h>

#include <random>

#include "core/fp16.h"
#include "imq/ggml_types.h"
#include "imq/quant.h"
#include "kernels/activations.h"

namespace imq {
namespace {

using kernels::ActFormat;

std::vector<float> activations(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g) * (g() % 7 == 0 ? 20.0f : 1.0f);  // some outliers, as in real rows
  if (n >= 544)
    for (size_t i = 0; i < 32; ++i) v[512 + i] = 0.0f;  // an all-zero block
  return v;
}

std::vector<float> codec_round_trip(GgmlType t, const std::vector<float>& x, int64_t ne0) {
  const quant::Codec& c = quant::codec(t);
  const int64_t rows = int64_t(x.size()) / ne0;
  std::vector<uint8_t> blocks(quant::row_size(c, ne0) * size_t(rows));
  c.quantize(x.data(), blocks.data(), rows, ne0, nullptr);
  std::vector<float> out(x.size());
  c.dequantize(blocks.data(), out.data(), int64_t(x.size()));
  return out;
}

TEST(Activations, Q8_0AndQ8_KEqualTheCodecRoundTrip) {
  const int64_t ne0 = 1024, rows = 3;
  const auto x = activations(size_t(ne0 * rows), 7);
  for (auto [f, t] : {std::pair{ActFormat::Q8_0, GgmlType::Q8_0}, std::pair{ActFormat::Q8_K, GgmlType::Q8_K}}) {
    std::vector<float> got(x.size());
    kernels::round_activations(f, x.data(), rows, ne0, got.data());
    const auto want = codec_round_trip(t, x, ne0);
    size_t changed = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      ASSERT_EQ(got[i], want[i]) << ggml_type_display_name(t) << " at " << i << " x=" << x[i];
      changed += got[i] != x[i];
    }
    EXPECT_GT(changed, x.size() / 2) << "rounding must change most values";
  }
}

// llama.cpp's activations take the AVX2 path of quantize_row_q8_0, which rounds half to even
// with the multiplier 127/amax; the reference codec (quantize_row_q8_0_ref) rounds half away
// from zero with 1/d. A block with amax 127 makes x * 127/amax exact, so 2.5 is a tie.
TEST(Activations, Q8_0RoundsTiesToEvenLikeTheAvx2Path) {
  std::vector<float> x(32, 0.0f);
  x[0] = 127.0f, x[1] = 2.5f, x[2] = -3.5f, x[3] = 4.5f;
  std::vector<float> got(32);
  kernels::round_activations(ActFormat::Q8_0, x.data(), 1, 32, got.data());
  EXPECT_EQ(got[0], 127.0f);
  EXPECT_EQ(got[1], 2.0f);
  EXPECT_EQ(got[2], -4.0f);
  EXPECT_EQ(got[3], 4.0f);
  const auto ref = codec_round_trip(GgmlType::Q8_0, x, 32);
  EXPECT_EQ(ref[1], 3.0f) << "the codec is llama-quantize's reference rounding";
}

TEST(Activations, HalfFormatsAndInPlace) {
  auto x = activations(256, 3);
  std::vector<float> h(x.size()), b(x.size());
  kernels::round_activations(ActFormat::F16, x.data(), 1, 256, h.data());
  kernels::round_activations(ActFormat::BF16, x.data(), 1, 256, b.data());
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(h[i], f16_to_f32(f32_to_f16(x[i])));
    EXPECT_EQ(b[i], bf16_to_f32(f32_to_bf16(x[i])));
  }
  kernels::round_activations(ActFormat::F16, x.data(), 1, 256, x.data());
  EXPECT_EQ(x, h);
  std::vector<float> y(256);
  kernels::round_activations(ActFormat::F32, h.data(), 1, 256, y.data());
  EXPECT_EQ(y, h);
}

TEST(Activations, FormatPerWeightTypeAndBadRows) {
  EXPECT_EQ(quant::codec(GgmlType::F32).act, ActFormat::F32);
  EXPECT_EQ(quant::codec(GgmlType::F16).act, ActFormat::F16);
  EXPECT_EQ(quant::codec(GgmlType::BF16).act, ActFormat::BF16);
  for (auto t : {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::IQ4_NL})
    EXPECT_EQ(quant::codec(t).act, ActFormat::Q8_0) << ggml_type_display_name(t);
  for (auto t : {GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K,
                 GgmlType::IQ4_XS, GgmlType::Q3_HIFI})
    EXPECT_EQ(quant::codec(t).act, ActFormat::Q8_K) << ggml_type_display_name(t);
  std::vector<float> x(96, 1.0f);
  EXPECT_ANY_THROW(kernels::round_activations(ActFormat::Q8_0, x.data(), 2, 48, x.data()));
  EXPECT_ANY_THROW(kernels::round_activations(ActFormat::Q8_K, x.data(), 1, 96, x.data()));
}

}  // namespace
}  // namespace imq
