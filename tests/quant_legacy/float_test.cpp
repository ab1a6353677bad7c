// The float codecs convert exactly: F16 agrees with the compiler's IEEE half type (round to
// nearest even), BF16 with a nearest-even rounding computed here in double, F32 is a copy.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/fp16.h"
#include "imq/quant.h"

namespace imq {
namespace {

// Every 997th float bit pattern (all signs, exponents, subnormals, ties, Inf, NaN), in rows.
std::vector<float> float_sweep() {
  std::vector<float> v;
  for (uint64_t x = 0; x < 0x100000000ull; x += 997) v.push_back(std::bit_cast<float>(uint32_t(x)));
  v.resize(v.size() / 256 * 256);  // whole rows of 256
  return v;
}

const float kSpecials[] = {0.0f, -0.0f, 65504.0f, 65519.996f, 65520.0f, 0x1p-24f, 0x1p-25f,
                           0x1.000002p-25f, 0x1.8p-24f, 1.0009765625f, 1.00048828125f,
                           3.40282347e38f, INFINITY, -INFINITY, 0x1p-149f, -0x1.fffffep-127f};

std::vector<float> test_values() {
  std::vector<float> v = float_sweep();
  for (size_t i = 0; i < std::size(kSpecials); ++i) v[i] = kSpecials[i];
  return v;
}

std::vector<uint16_t> convert(GgmlType type, const std::vector<float>& x) {
  const quant::Codec& c = quant::codec(type);
  std::vector<uint16_t> out(x.size());
  EXPECT_EQ(c.quantize(x.data(), out.data(), int64_t(x.size() / 256), 256, nullptr), 2 * x.size());
  return out;
}

TEST(FloatCodecs, F16MatchesIeeeHalf) {
  const std::vector<float> x = test_values();
  const std::vector<uint16_t> h = convert(GgmlType::F16, x);
  for (size_t i = 0; i < x.size(); ++i) {
    const _Float16 hw = static_cast<_Float16>(x[i]);
    if (std::isnan(x[i])) {
      ASSERT_EQ(h[i] & 0x7c00, 0x7c00) << i;
      ASSERT_NE(h[i] & 0x03ff, 0) << i;
      continue;
    }
    ASSERT_EQ(h[i], std::bit_cast<uint16_t>(hw)) << std::hexfloat << x[i];
  }
}

TEST(FloatCodecs, F16DequantizesEveryHalf) {
  std::vector<uint16_t> all(0x10000);
  for (uint32_t i = 0; i < all.size(); ++i) all[i] = uint16_t(i);
  std::vector<float> y(all.size());
  quant::codec(GgmlType::F16).dequantize(all.data(), y.data(), int64_t(y.size()));
  for (uint32_t i = 0; i < all.size(); ++i) {
    const float hw = float(std::bit_cast<_Float16>(uint16_t(i)));
    if (std::isnan(hw)) {
      ASSERT_TRUE(std::isnan(y[i])) << i;
    } else {
      ASSERT_EQ(std::bit_cast<uint32_t>(y[i]), std::bit_cast<uint32_t>(hw)) << i;
    }
  }
}

// Nearest bf16 by comparing the two neighbours' distances in double; ties to the even one.
uint16_t bf16_nearest_even(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  const uint16_t down = uint16_t(bits >> 16);  // truncation: towards zero
  if ((bits & 0xffff) == 0) return down;
  const uint16_t up = uint16_t(down + 1);  // away from zero (may become Inf)
  auto value = [](uint16_t h) {
    if ((h & 0x7fff) == 0x7f80) return std::copysign(0x1p128, double(bf16_to_f32(h)));
    return double(bf16_to_f32(h));
  };
  const double dd = std::fabs(double(f) - value(down)), du = std::fabs(value(up) - double(f));
  if (dd != du) return dd < du ? down : up;
  return (down & 1) ? up : down;
}

TEST(FloatCodecs, Bf16RoundsToNearestEvenAndQuietsNan) {
  const std::vector<float> x = test_values();
  const std::vector<uint16_t> h = convert(GgmlType::BF16, x);
  for (size_t i = 0; i < x.size(); ++i) {
    const uint32_t bits = std::bit_cast<uint32_t>(x[i]);
    if (std::isnan(x[i])) {
      ASSERT_EQ(h[i], uint16_t((bits >> 16) | 0x40)) << i;  // ggml keeps the payload, sets quiet
      continue;
    }
    ASSERT_EQ(h[i], bf16_nearest_even(x[i])) << std::hexfloat << x[i];
  }
  std::vector<float> y(x.size());
  quant::codec(GgmlType::BF16).dequantize(h.data(), y.data(), int64_t(y.size()));
  for (size_t i = 0; i < x.size(); ++i)
    ASSERT_EQ(std::bit_cast<uint32_t>(y[i]), uint32_t(h[i]) << 16) << i;
}

TEST(FloatCodecs, F32IsACopy) {
  const std::vector<float> x = test_values();
  const quant::Codec& c = quant::codec(GgmlType::F32);
  std::vector<float> q(x.size()), y(x.size());
  EXPECT_EQ(c.quantize(x.data(), q.data(), int64_t(x.size() / 256), 256, nullptr), 4 * x.size());
  c.dequantize(q.data(), y.data(), int64_t(y.size()));
  EXPECT_EQ(0, std::memcmp(x.data(), y.data(), 4 * x.size()));
}

}  // namespace
}  // namespace imq
