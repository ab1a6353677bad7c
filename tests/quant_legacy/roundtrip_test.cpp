// Round-trip behaviour of every legacy, IQ4 and float codec on random data: error bounds from
// one table, importance lowering the weighted error where ggml uses it, degenerate blocks.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "common/codec_round_trip.h"
#include "common/random_rows.h"
#include "imq/quant.h"
#include "quant/iq4/iq4_search.h"
#include "quant/legacy/search.h"
#include "test_util_impl.h"

namespace imq {
namespace {

// Bounds on N(0,1) data (64 rows x 256, seed 42), measured values about 10% below:
// nrmse = sqrt(sum (x - y)^2 / sum x^2); max_err = largest |x - y| / max|x| of its 32-block.
const test::Bound kBounds[] = {
    {GgmlType::F32, 0.0, 0.0, false},
    {GgmlType::F16, 0.0003, 0.00049, false},  // half an f16 step: 2^-11 relative
    {GgmlType::BF16, 0.002, 0.0039, false},   // half a bf16 step: 2^-8 relative
    {GgmlType::Q4_0, 0.095, 0.19, true},
    {GgmlType::Q4_1, 0.085, 0.15, true},
    {GgmlType::Q5_0, 0.047, 0.095, true},
    {GgmlType::Q5_1, 0.042, 0.075, true},
    {GgmlType::Q8_0, 0.006, 0.0045, false},  // d/2 + 127 * f16 error of d = amax * 0.00443
    {GgmlType::IQ4_NL, 0.085, 0.17, true},
    {GgmlType::IQ4_XS, 0.085, 0.17, true},
};

constexpr int64_t kRows = 64, kCols = 256;

const test::RandomRows& data() {
  static const test::RandomRows d = test::random_rows({.seed = 42, .rows = kRows, .cols = kCols});
  return d;
}

class Codecs : public ::testing::TestWithParam<test::Bound> {};

TEST_P(Codecs, RegistryRowMatchesGgmlTypeTable) {
  const quant::Codec& c = quant::codec(GetParam().type);
  const auto info = ggml_type_info(c.type);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(c.name, info->name);
  EXPECT_EQ(c.block_size, info->block_size);
  EXPECT_EQ(c.type_size, info->type_size);
}

TEST_P(Codecs, ErrorWithinBounds) {
  const test::Bound b = GetParam();
  const quant::Codec& c = quant::codec(b.type);
  for (const float* importance : {static_cast<const float*>(nullptr), data().importance.data()}) {
    SCOPED_TRACE(importance ? "with importance" : "without importance");
    const auto& x = data().x;
    const test::RoundTrip r = test::round_trip(c, x, kRows, kCols, importance);
    double e2 = 0, x2 = 0, worst = 0;
    for (size_t blk = 0; blk < x.size() / 32; ++blk) {
      double amax = 0, err = 0;
      for (size_t i = blk * 32; i < blk * 32 + 32; ++i) {
        ASSERT_TRUE(std::isfinite(r.y[i])) << i;
        const double d = double(x[i]) - r.y[i];
        e2 += d * d;
        x2 += double(x[i]) * x[i];
        amax = std::max(amax, double(std::fabs(x[i])));
        err = std::max(err, std::fabs(d));
      }
      worst = std::max(worst, err / amax);
    }
    EXPECT_LE(std::sqrt(e2 / x2), b.nrmse);
    EXPECT_LE(worst, b.max_err);
  }
}

// Where ggml uses the imatrix, strongly uneven importance must lower the importance-weighted
// error; where it does not (floats, Q8_0), the bytes must not change at all.
TEST_P(Codecs, ImportanceLowersWeightedErrorOrIsIgnored) {
  const test::Bound b = GetParam();
  const quant::Codec& c = quant::codec(b.type);
  const auto& x = data().x;
  const auto& w = data().importance;
  const test::RoundTrip plain = test::round_trip(c, x, kRows, kCols, nullptr);
  const test::RoundTrip weighted = test::round_trip(c, x, kRows, kCols, w.data());
  if (!b.uses_importance) {
    EXPECT_EQ(plain.bytes, weighted.bytes);
    return;
  }
  EXPECT_NE(plain.bytes, weighted.bytes);
  auto weighted_mse = [&](const std::vector<float>& y) {
    double s = 0;
    for (size_t i = 0; i < x.size(); ++i)
      s += w[i % kCols] * (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
    return s / double(x.size());
  };
  EXPECT_LT(weighted_mse(weighted.y), 0.95 * weighted_mse(plain.y));
}

// Rows are independent: quantizing row by row gives the bytes of quantizing all at once.
TEST_P(Codecs, RowsAreIndependent) {
  const quant::Codec& c = quant::codec(GetParam().type);
  const auto& x = data().x;
  const float* w = data().importance.data();
  const test::RoundTrip all = test::round_trip(c, x, kRows, kCols, w);
  const size_t row_bytes = quant::row_size(c, kCols);
  std::vector<uint8_t> one(row_bytes);
  for (int64_t r = 0; r < 8; ++r) {
    c.quantize(x.data() + r * kCols, one.data(), 1, kCols, w);
    EXPECT_TRUE(std::equal(one.begin(), one.end(), all.bytes.begin() + r * row_bytes)) << r;
  }
}

// Degenerate blocks: zeros, values below ggml's 1e-15 threshold, constants, one spike.
TEST_P(Codecs, DegenerateBlocksStayFinite) {
  const quant::Codec& c = quant::codec(GetParam().type);
  const int64_t n = 256;
  std::vector<float> ones(size_t(n), 1.0f);
  for (const float* importance :
       {static_cast<const float*>(nullptr), static_cast<const float*>(ones.data())}) {
    std::vector<float> zeros(size_t(n), 0.0f), tiny(size_t(n), 1e-20f), constant(size_t(n), -0.75f),
        spike(size_t(n), 0.0f);
    spike[37] = 3.0f;
    const test::RoundTrip z = test::round_trip(c, zeros, 1, n, importance);
    for (float v : z.y) EXPECT_EQ(v, 0.0f);
    if (c.type != GgmlType::F32) {
      const test::RoundTrip t = test::round_trip(c, tiny, 1, n, importance);
      for (float v : t.y) EXPECT_LE(std::fabs(v), 1.01e-20f);
    }
    const test::RoundTrip k = test::round_trip(c, constant, 1, n, importance);
    for (float v : k.y) EXPECT_NEAR(v, -0.75f, 0.75f * GetParam().max_err + 1e-6);
    const test::RoundTrip s = test::round_trip(c, spike, 1, n, importance);
    for (int64_t i = 0; i < n; ++i)
      EXPECT_NEAR(s.y[size_t(i)], spike[size_t(i)], 3.0f * GetParam().max_err + 1e-6) << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Types, Codecs, ::testing::ValuesIn(kBounds), [](const auto& p) {
  return ggml_type_display_name(p.param.type);
});

TEST(Search, NearestIntRoundsHalfToEven) {
  EXPECT_EQ(quant::nearest_int(2.5f), 2);
  EXPECT_EQ(quant::nearest_int(3.5f), 4);
  EXPECT_EQ(quant::nearest_int(-2.5f), -2);
  EXPECT_EQ(quant::nearest_int(-3.5f), -4);
  EXPECT_EQ(quant::nearest_int(2.4999998f), 2);
  EXPECT_EQ(quant::nearest_int(-7.6f), -8);
  EXPECT_EQ(quant::nearest_int(4194303.0f), 4194303);
}

// The spec's lookup: binary search for the first entry above v, then the nearer of it and its
// lower neighbour by float distances, ties to the higher index.
int nearest_code_by_bisection(float v) {
  const int8_t* k = quant::iq4::kCodebook;
  if (v <= float(k[0])) return 0;
  if (v >= float(k[15])) return 15;
  int lo = 0, hi = 15;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    (v < float(k[mid]) ? hi : lo) = mid;
  }
  return v - float(k[hi - 1]) < float(k[hi]) - v ? hi - 1 : hi;
}

TEST(Search, Iq4NearestCodeMatchesBisection) {
  std::vector<float> probes = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f};
  for (float v = -140.0f; v <= 140.0f; v += 0.0625f) probes.push_back(v);
  for (int j = 0; j + 1 < 16; ++j) {  // every midpoint and the floats next to it
    float mid = 0.5f * (float(quant::iq4::kCodebook[j]) + float(quant::iq4::kCodebook[j + 1]));
    for (int s = 0; s < 4; ++s) mid = std::nextafter(mid, -INFINITY);
    for (int s = 0; s < 9; ++s, mid = std::nextafter(mid, INFINITY)) probes.push_back(mid);
  }
  for (float v : probes) ASSERT_EQ(quant::iq4::nearest_code(v), nearest_code_by_bisection(v)) << v;
}

TEST(Search, SymCodesStayInRangeAndFitTheData) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0, 2);
  float x[32];
  for (float& v : x) v = normal(rng);
  uint8_t codes[32];
  const float s = quant::sym_scale_search(32, 8, x, nullptr, codes);
  for (int i = 0; i < 32; ++i) {
    ASSERT_LT(codes[i], 16);
    EXPECT_NEAR(s * float(codes[i] - 8), x[i], std::fabs(s) * 1.01f) << i;
  }
}

TEST(Search, AsymImCoversTheRange) {
  float x[32];
  for (int i = 0; i < 32; ++i) x[i] = 0.5f + 0.1f * float(i);  // all positive: min clamps to 0
  uint8_t codes[32];
  float neg_min = -1;
  const float s =
      quant::asym_scale_search_im(32, 15, x, nullptr, codes, &neg_min, -0.9f, 0.05f, 36, false);
  EXPECT_EQ(neg_min, 0.0f);
  for (int i = 0; i < 32; ++i) {
    ASSERT_LE(codes[i], 15);
    EXPECT_NEAR(s * float(codes[i]) - neg_min, x[i], s * 0.51f) << i;
  }
}

}  // namespace
}  // namespace imq
