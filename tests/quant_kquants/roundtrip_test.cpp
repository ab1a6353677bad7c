// Round-trip behaviour of the K-quant codecs on random data: error bounds from one table,
// importance lowering the importance-weighted error, determinism, degenerate super-blocks.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "common/codec_round_trip.h"
#include "common/random_rows.h"
#include "imq/quant.h"
#include "kquant_test_util.h"

namespace imq {
namespace {

// Bounds on N(0,1) data (64 rows x 1024, seed 42), about 10% above the measured values of the
// worse of the two paths (with / without importance):
// nrmse = sqrt(sum (x - y)^2 / sum x^2); max_err = largest |x - y| / max|x| of its super-block.
const test::Bound kBounds[] = {
    {GgmlType::Q2_K, 0.33, 0.70, true},    // measured 0.298 / 0.639
    {GgmlType::Q3_K, 0.17, 0.32, true},    // 0.152 / 0.290
    {GgmlType::Q4_K, 0.082, 0.145, true},  // 0.0744 / 0.131
    {GgmlType::Q5_K, 0.041, 0.084, true},  // 0.0368 / 0.0756
    {GgmlType::Q6_K, 0.020, 0.050, true},  // 0.0183 / 0.0452
    {GgmlType::Q8_K, 0.0077, 0.0040, false},  // half a step: amax / 254 = 0.003937
};

constexpr int64_t kRows = 64, kCols = 1024;

const test::RandomRows& data() {
  static const test::RandomRows d = test::random_rows({.seed = 42, .rows = kRows, .cols = kCols});
  return d;
}

// sqrt(sum v (x - y)^2 / sum v x^2) with per-column weights v (null: 1).
double weighted_nrmse(const std::vector<float>& x, const std::vector<float>& y, const float* v) {
  double err = 0, ref = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double w = v ? v[i % size_t(kCols)] : 1.0;
    err += w * (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
    ref += w * double(x[i]) * x[i];
  }
  return std::sqrt(err / ref);
}

class KQuants : public ::testing::TestWithParam<test::Bound> {};

TEST_P(KQuants, RegistryRowMatchesGgmlTypeTable) {
  const quant::Codec& c = quant::codec(GetParam().type);
  const auto info = *ggml_type_info(c.type);
  EXPECT_EQ(c.name, info.name);
  EXPECT_EQ(c.block_size, 256u);
  EXPECT_EQ(c.type_size, info.type_size);
}

TEST_P(KQuants, ErrorWithinBoundWithAndWithoutImportance) {
  const test::Bound b = GetParam();
  const quant::Codec& c = quant::codec(b.type);
  for (const float* importance : {static_cast<const float*>(nullptr), data().importance.data()}) {
    SCOPED_TRACE(importance ? "with importance" : "without importance");
    const test::RoundTrip r = test::round_trip(c, data().x, kRows, kCols, importance);
    EXPECT_LT(weighted_nrmse(data().x, r.y, nullptr), b.nrmse);
    double worst = 0;
    for (size_t blk = 0; blk < data().x.size() / 256; ++blk) {
      double amax = 0, err = 0;
      for (size_t i = blk * 256; i < (blk + 1) * 256; ++i) {
        amax = std::max(amax, double(std::fabs(data().x[i])));
        err = std::max(err, double(std::fabs(data().x[i] - r.y[i])));
      }
      worst = std::max(worst, err / amax);
    }
    EXPECT_LT(worst, b.max_err);
  }
}

// Deterministic bytes; importance changes the result exactly where llama-quantize uses it, and
// then lowers the importance-weighted error.
TEST_P(KQuants, ImportanceIsUsedAndDeterministic) {
  const test::Bound b = GetParam();
  const quant::Codec& c = quant::codec(b.type);
  const float* imp = data().importance.data();
  const test::RoundTrip plain1 = test::round_trip(c, data().x, kRows, kCols, nullptr);
  const test::RoundTrip plain2 = test::round_trip(c, data().x, kRows, kCols, nullptr);
  const test::RoundTrip im1 = test::round_trip(c, data().x, kRows, kCols, imp);
  const test::RoundTrip im2 = test::round_trip(c, data().x, kRows, kCols, imp);
  EXPECT_EQ(plain1.bytes, plain2.bytes);
  EXPECT_EQ(im1.bytes, im2.bytes);
  EXPECT_EQ(plain1.bytes != im1.bytes, b.uses_importance);
  if (b.uses_importance) {
    EXPECT_LT(weighted_nrmse(data().x, im1.y, imp), weighted_nrmse(data().x, plain1.y, imp));
  }
  // Rows are independent: quantizing one row alone gives that row's bytes.
  const size_t row_bytes = quant::row_size(c, kCols);
  const std::vector<float> row5(data().x.begin() + 5 * kCols, data().x.begin() + 6 * kCols);
  const test::RoundTrip one = test::round_trip(c, row5, 1, kCols, imp);
  EXPECT_TRUE(std::equal(one.bytes.begin(), one.bytes.end(), im1.bytes.begin() + 5 * row_bytes));
}

// Our dequantization equals the spec decoder on the codec's own output.
TEST_P(KQuants, DequantizeMatchesSpecDecoder) {
  const quant::Codec& c = quant::codec(GetParam().type);
  const test::RoundTrip r = test::round_trip(c, data().x, 4, kCols, data().importance.data());
  const auto spec = test::spec_decode_k_all(GetParam().type, r.bytes.data(), 4 * kCols);
  EXPECT_EQ(0, std::memcmp(spec.data(), r.y.data(), spec.size() * sizeof(float)));
}

// All-zero, constant, tiny and single-spike super-blocks: finite output, zeros stay zero.
TEST_P(KQuants, DegenerateBlocks) {
  const quant::Codec& c = quant::codec(GetParam().type);
  std::vector<float> x(6 * 256, 0.0f);
  for (int i = 256; i < 512; ++i) x[size_t(i)] = 0.75f;            // constant positive
  for (int i = 512; i < 768; ++i) x[size_t(i)] = -2.5f;            // constant negative
  for (int i = 768; i < 1024; ++i) x[size_t(i)] = 1e-20f * float(i % 7);  // below GROUP_MAX_EPS scale
  x[1024 + 77] = 3.0f;                                             // one spike
  for (int i = 1280; i < 1536; ++i) x[size_t(i)] = i % 2 ? 1e4f : -1e4f;
  for (const float* imp : {static_cast<const float*>(nullptr), data().importance.data()}) {
    const test::RoundTrip r = test::round_trip(c, x, 6, 256, imp);
    for (int i = 0; i < 256; ++i) EXPECT_EQ(r.y[size_t(i)], 0.0f) << i;
    for (size_t i = 0; i < x.size(); ++i) {
      ASSERT_TRUE(std::isfinite(r.y[i])) << i;
      EXPECT_LE(std::fabs(r.y[i] - x[i]), 0.35 * 1e4 + 1e-6) << i;
    }
    for (int i = 256; i < 768; ++i) EXPECT_NEAR(r.y[size_t(i)], x[size_t(i)], 0.35 * 2.5) << i;
    EXPECT_NEAR(r.y[1024 + 77], 3.0f, 0.35 * 3.0);
  }
}

INSTANTIATE_TEST_SUITE_P(AllKQuants, KQuants, ::testing::ValuesIn(kBounds),
                         [](const auto& p) { return ggml_type_display_name(p.param.type); });

}  // namespace
}  // namespace imq
