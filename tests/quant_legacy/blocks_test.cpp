// Dequantization of hand-built blocks (values worked out by hand from spec g.3), and of random
// bytes against the test's own bit-by-bit decoder.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "codec_test_util.h"
#include "imq/quant.h"

namespace imq {
namespace {

std::vector<float> dequantize(GgmlType type, const std::vector<uint8_t>& bytes) {
  const quant::Codec& c = quant::codec(type);
  EXPECT_EQ(bytes.size() % c.type_size, 0u);
  const int64_t n = int64_t(bytes.size() / c.type_size) * c.block_size;
  std::vector<float> y(static_cast<size_t>(n));
  c.dequantize(bytes.data(), y.data(), n);
  return y;
}

// f16 constants: 0x3c00 = 1, 0x3800 = 0.5, 0x3400 = 0.25, 0x3000 = 0.125, 0x4000 = 2,
// 0xbc00 = -1.

TEST(HandBuiltBlock, Q4_0) {
  std::vector<uint8_t> b = {0x00, 0x38};  // d = 0.5
  for (int j = 0; j < 16; ++j) b.push_back(uint8_t(j | (15 - j) << 4));
  const auto y = dequantize(GgmlType::Q4_0, b);
  EXPECT_EQ(y[0], -4.0f);   // (0 - 8) * 0.5
  EXPECT_EQ(y[15], 3.5f);   // (15 - 8) * 0.5
  EXPECT_EQ(y[16], 3.5f);   // high nibble of qs[0] = 15
  EXPECT_EQ(y[31], -4.0f);  // high nibble of qs[15] = 0
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[size_t(j)], 0.5f * float(j - 8));
    EXPECT_EQ(y[size_t(j + 16)], 0.5f * float(7 - j));
  }
}

TEST(HandBuiltBlock, Q4_1) {
  std::vector<uint8_t> b = {0x00, 0x34, 0x00, 0xbc};  // d = 0.25, m = -1
  for (int j = 0; j < 16; ++j) b.push_back(uint8_t(j | (15 - j) << 4));
  const auto y = dequantize(GgmlType::Q4_1, b);
  EXPECT_EQ(y[0], -1.0f);
  EXPECT_EQ(y[15], 2.75f);  // 15 * 0.25 - 1
  EXPECT_EQ(y[16], 2.75f);
  EXPECT_EQ(y[20], 1.75f);  // high nibble of qs[4] = 11
}

TEST(HandBuiltBlock, Q5_0) {
  // d = 1, qh = 0x80000001: fifth bit set for elements 0 and 31; all nibbles 0x?3 / 0x?0.
  std::vector<uint8_t> b = {0x00, 0x3c, 0x01, 0x00, 0x00, 0x80};
  for (int j = 0; j < 16; ++j) b.push_back(0x03);
  const auto y = dequantize(GgmlType::Q5_0, b);
  EXPECT_EQ(y[0], 3.0f);     // (16 | 3) - 16
  EXPECT_EQ(y[1], -13.0f);   // 3 - 16
  EXPECT_EQ(y[16], -16.0f);  // 0 - 16
  EXPECT_EQ(y[31], 0.0f);    // (16 | 0) - 16
}

TEST(HandBuiltBlock, Q5_1) {
  // d = 2, m = 0.5, qh = 0x00010002: fifth bit for elements 1 and 16.
  std::vector<uint8_t> b = {0x00, 0x40, 0x00, 0x38, 0x02, 0x00, 0x01, 0x00};
  for (int j = 0; j < 16; ++j) b.push_back(0xf1);
  const auto y = dequantize(GgmlType::Q5_1, b);
  EXPECT_EQ(y[0], 2.5f);    // 1 * 2 + 0.5
  EXPECT_EQ(y[1], 34.5f);   // 17 * 2 + 0.5
  EXPECT_EQ(y[16], 62.5f);  // 31 * 2 + 0.5
  EXPECT_EQ(y[17], 30.5f);  // 15 * 2 + 0.5
}

TEST(HandBuiltBlock, Q8_0) {
  std::vector<uint8_t> b = {0x00, 0x30};  // d = 0.125
  for (int j = 0; j < 32; ++j) b.push_back(uint8_t(int8_t(8 * j - 128)));
  const auto y = dequantize(GgmlType::Q8_0, b);
  EXPECT_EQ(y[0], -16.0f);
  EXPECT_EQ(y[16], 0.0f);
  EXPECT_EQ(y[31], 15.0f);
}

TEST(HandBuiltBlock, IQ4_NL) {
  std::vector<uint8_t> b = {0x00, 0xbc};  // d = -1
  for (int j = 0; j < 16; ++j) b.push_back(uint8_t(j | (15 - j) << 4));
  const auto y = dequantize(GgmlType::IQ4_NL, b);
  EXPECT_EQ(y[0], 127.0f);
  EXPECT_EQ(y[8], -1.0f);
  EXPECT_EQ(y[15], -113.0f);
  EXPECT_EQ(y[16], -113.0f);
  EXPECT_EQ(y[31], 127.0f);
}

TEST(HandBuiltBlock, IQ4_XS) {
  // d = 0.5; sub-block scales ls = 32 + ib - 4 (28..35): low nibbles 12,13,14,15,0,1,2,3 and
  // high bits 1,1,1,1,2,2,2,2 -> scales_l = {0xdc, 0xfe, 0x10, 0x32}, scales_h = 0xaa55.
  std::vector<uint8_t> b = {0x00, 0x38, 0x55, 0xaa, 0xdc, 0xfe, 0x10, 0x32};
  for (int ib = 0; ib < 8; ++ib)
    for (int j = 0; j < 16; ++j) b.push_back(uint8_t(ib | (15 - ib) << 4));
  const auto y = dequantize(GgmlType::IQ4_XS, b);
  EXPECT_EQ(y[0], 0.5f * -4 * -127);         // ib 0: ls - 32 = -4, code 0
  EXPECT_EQ(y[16], 0.5f * -4 * 113);         // high nibble 15
  EXPECT_EQ(y[32 * 4], 0.0f);                // ib 4: ls - 32 = 0
  EXPECT_EQ(y[32 * 7 + 3], 0.5f * 3 * -10);  // ib 7: ls - 32 = 3, code 7
  EXPECT_EQ(y[32 * 7 + 20], 0.5f * 3 * 1);   // code 8
}

// Random blocks (scales forced finite) decode the same through the codec and the spec decoder.
class RandomBytes : public ::testing::TestWithParam<GgmlType> {};

TEST_P(RandomBytes, DequantizeMatchesSpecDecoder) {
  const GgmlType type = GetParam();
  const quant::Codec& c = quant::codec(type);
  std::mt19937 rng(11);
  std::vector<uint8_t> bytes(64 * c.type_size);
  for (auto& v : bytes) v = uint8_t(rng());
  const bool has_min = type == GgmlType::Q4_1 || type == GgmlType::Q5_1;
  for (size_t b = 0; b < 64; ++b)
    for (int k = 0; k < (has_min ? 2 : 1); ++k)
      bytes[b * c.type_size + 2 * k + 1] &= 0xfb;  // even f16 exponent: finite
  const auto y = dequantize(type, bytes);
  const auto spec = test::spec_decode_all(type, bytes.data(), int64_t(y.size()));
  for (size_t i = 0; i < y.size(); ++i) ASSERT_EQ(y[i], spec[i]) << i;
}

INSTANTIATE_TEST_SUITE_P(Types, RandomBytes,
                         ::testing::Values(GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0,
                                           GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::IQ4_NL,
                                           GgmlType::IQ4_XS),
                         [](const auto& p) { return ggml_type_display_name(p.param); });

}  // namespace
}  // namespace imq

namespace imq {
namespace {

// Q8_0 rounds x / d half away from zero (roundf): with max 127 the scale is exactly 1.
TEST(HandBuiltQuantize, Q8_0RoundsHalfAwayFromZero) {
  float x[32] = {127.0f, 0.5f, -0.5f, 1.5f, 2.5f, -2.5f, 0.49999997f, -126.5f, 3.4999998f};
  uint8_t b[34];
  quant::codec(GgmlType::Q8_0).quantize(x, b, 1, 32, nullptr);
  EXPECT_EQ(test::le16(b), 0x3c00);  // d = 1
  const int8_t expected[9] = {127, 1, -1, 2, 3, -3, 0, -127, 3};
  for (int j = 0; j < 9; ++j) EXPECT_EQ(int8_t(b[2 + j]), expected[j]) << j;
}

// Q4_0 without importance: d = max / -8 from the signed largest value, codes trunc(x/d + 8.5)
// clamped to 15.
TEST(HandBuiltQuantize, Q4_0ReferenceFormula) {
  float x[32] = {};
  x[0] = -8.0f;   // signed max (first of equal magnitudes) -> d = -8 / -8 = 1 -> code 0
  x[1] = 8.0f;    // 8 + 8.5 = 16.5 -> clamped to 15
  x[2] = 2.5f;    // 2.5 + 8.5 = 11
  x[3] = -0.75f;  // 7.75 -> 7 (truncated)
  uint8_t b[18];
  quant::codec(GgmlType::Q4_0).quantize(x, b, 1, 32, nullptr);
  EXPECT_EQ(test::le16(b), 0x3c00);
  EXPECT_EQ(b[2] & 15, 0);
  EXPECT_EQ(b[3] & 15, 15);
  EXPECT_EQ(b[4] & 15, 11);
  EXPECT_EQ(b[5] & 15, 7);
  EXPECT_EQ(b[6] & 15, 8);  // zeros -> 8
}

}  // namespace
}  // namespace imq
