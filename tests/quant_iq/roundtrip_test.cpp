// Round trip of the grid i-quant codecs (IQ1_S ... IQ3_S) on random
// rows: error bounds from one table, importance lowering the weighted error, rows independent of
// each other, degenerate blocks finite. Their byte identity with llama-quantize is checked in
// tests/quantize (iquant_tensors_test.cpp, exact_test.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "common/codec_round_trip.h"
#include "common/random_rows.h"
#include "imq/quant.h"
#include "test_util_impl.h"

namespace imq {
namespace {

// Bounds on N(0,1) data (64 rows x 256, seed 42) with and without importance, about 10% above
// the larger measured value: nrmse = sqrt(sum (x - y)^2 / sum x^2); max_err = largest |x - y| /
// max|x| of its 32-block (above 1 for the ternary IQ1 grids and with uneven importance, where a
// value of little weight may land on the far level).
const test::Bound kBounds[] = {
    {GgmlType::IQ1_S, 0.70, 1.60, true},
    {GgmlType::IQ1_M, 0.65, 1.45, true},
    {GgmlType::IQ2_XXS, 0.40, 0.99, true},
    {GgmlType::IQ2_XS, 0.36, 1.06, true},
    {GgmlType::IQ2_S, 0.29, 0.69, true},
    {GgmlType::IQ3_XXS, 0.23, 0.90, true},
    {GgmlType::IQ3_S, 0.18, 0.44, true},
};

constexpr int64_t kRows = 64, kCols = 256;

const test::RandomRows& data() {
  static const test::RandomRows d = test::random_rows({.seed = 42, .rows = kRows, .cols = kCols});
  return d;
}

class GridCodecs : public ::testing::TestWithParam<test::Bound> {};

TEST_P(GridCodecs, RegistryRowMatchesGgmlTypeTable) {
  const quant::Codec& c = quant::codec(GetParam().type);
  const auto info = ggml_type_info(c.type);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(c.name, info->name);
  EXPECT_EQ(c.block_size, info->block_size);
  EXPECT_EQ(c.type_size, info->type_size);
  EXPECT_EQ(c.act, quant::ActFormat::Q8_K);  // ggml's vec_dot_type for every i-quant
}

TEST_P(GridCodecs, ErrorWithinBounds) {
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
    std::printf("%s %s: nrmse %.4f max_err %.4f\n", ggml_type_display_name(b.type).c_str(),
                importance ? "imat" : "plain", std::sqrt(e2 / x2), worst);
    EXPECT_LE(std::sqrt(e2 / x2), b.nrmse);
    EXPECT_LE(worst, b.max_err);
  }
}

// Strongly uneven importance must lower the importance-weighted error.
TEST_P(GridCodecs, ImportanceLowersWeightedError) {
  const quant::Codec& c = quant::codec(GetParam().type);
  const auto& x = data().x;
  const auto& w = data().importance;
  const test::RoundTrip plain = test::round_trip(c, x, kRows, kCols, nullptr);
  const test::RoundTrip weighted = test::round_trip(c, x, kRows, kCols, w.data());
  auto weighted_mse = [&](const std::vector<float>& y) {
    double s = 0;
    for (size_t i = 0; i < x.size(); ++i) s += w[i % kCols] * (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
    return s / double(x.size());
  };
  EXPECT_LT(weighted_mse(weighted.y), 0.95 * weighted_mse(plain.y));
}

TEST_P(GridCodecs, RowsAreIndependent) {
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

// Zeros decode to zeros, a constant to itself; a lone spike stays finite and, except in IQ3_S,
// keeps about its value. (Without importance the weights are x^2, so the zeros around the spike
// carry no weight and may decode anywhere. IQ3_S reproduces llama-quantize's quirk that an
// all-zero sub-block does not advance the index and sign output, so the spike's sub-block is
// written into the first slot and decodes elsewhere.)
TEST_P(GridCodecs, DegenerateBlocksStayFinite) {
  const quant::Codec& c = quant::codec(GetParam().type);
  const int64_t n = 256;
  std::vector<float> ones(size_t(n), 1.0f);
  for (const float* importance : {static_cast<const float*>(nullptr), static_cast<const float*>(ones.data())}) {
    std::vector<float> zeros(size_t(n), 0.0f), constant(size_t(n), -0.75f), spike(size_t(n), 0.0f);
    spike[37] = 3.0f;
    for (float v : test::round_trip(c, zeros, 1, n, importance).y) EXPECT_EQ(v, 0.0f);
    for (float v : test::round_trip(c, constant, 1, n, importance).y) EXPECT_NEAR(v, -0.75f, 0.75f * GetParam().max_err);
    const test::RoundTrip s = test::round_trip(c, spike, 1, n, importance);
    for (float v : s.y) ASSERT_TRUE(std::isfinite(v));
    if (c.type != GgmlType::IQ3_S) {
      EXPECT_NEAR(s.y[37], 3.0f, 3.0f * GetParam().max_err);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, GridCodecs, ::testing::ValuesIn(kBounds),
                         [](const auto& p) { return ggml_type_display_name(p.param.type); });

}  // namespace
}  // namespace imq
