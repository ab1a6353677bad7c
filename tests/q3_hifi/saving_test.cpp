// Q3_HIFI's saving search (outliers chosen by the error their removal saves) against the
// fork's magnitude rule and imq's joint search, and the Q3_HIFI block grid of error
// compensation (fit, store, outliers kept).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

#include "common/random_rows.h"
#include "core/fp16.h"
#include "imq/quant.h"
#include "quant/grid.h"
#include "quant/q3_hifi.h"

namespace imq {
namespace {

using quant::q3_hifi::Block;
using quant::q3_hifi::kBlockSize;
using quant::q3_hifi::kOutliers;
using quant::q3_hifi::Selection;

constexpr int64_t kRows = 32, kCols = 512;  // 64 blocks

const test::RandomRows& data() {
  static const test::RandomRows d =
      test::random_rows({.seed = 11, .rows = kRows, .cols = kCols, .tail_scale = 3});
  return d;
}

double error_of(const Block& b, const float* x, const float* w) {
  float y[kBlockSize];
  quant::q3_hifi::dequantize_block(b, y);
  return quant::q3_hifi::weighted_error(x, y, w, kBlockSize);
}

// A block the magnitude rule gets wrong: every sub-block holds the 3-bit levels -4..3 of one
// step exactly (twice), so the largest weights (the -4s) cost nothing under Q3_K, while one
// small weight in each of 8 sub-blocks lies half a step off the grid. Storing the 8 largest
// saves nothing; storing the 8 off-grid weights leaves an exact block.
std::vector<float> off_grid_block(float step, int shift) {
  std::vector<float> x(kBlockSize);
  for (int i = 0; i < kBlockSize; ++i) x[size_t(i)] = step * float((i + shift) % 8 - 4);
  for (int j = 0; j < 8; ++j) x[size_t(32 * j + 5)] = 0.5f * step;
  return x;
}

TEST(Q3HifiSaving, BeatsMagnitudeOnConstructedBlocks) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(0.5f, 2.0f);
  for (int t = 0; t < 8; ++t) {
    const auto x = off_grid_block(0.01f * float(t + 1), t);
    std::vector<float> w(kBlockSize);
    for (auto& v : w) v = u(rng);
    for (const float* imp : {static_cast<const float*>(nullptr), static_cast<const float*>(w.data())}) {
      Block bm, bs;
      const auto rm = quant::q3_hifi::quantize_block(x.data(), imp, Selection::kMagnitude, bm);
      const auto rs = quant::q3_hifi::quantize_block(x.data(), imp, Selection::kSaving, bs);
      EXPECT_NEAR(rs.error, error_of(bs, x.data(), imp), 1e-9 * rm.error);
      // Measured: the saving search's error is below 1% of the magnitude rule's here.
      EXPECT_LT(rs.error, 0.1 * rm.error) << "block " << t << (imp ? " with" : " without") << " importance";
      // The proposal alone finds the 8 off-grid weights from the whole-block Q3_K scale.
      uint8_t set[kOutliers];
      uint8_t q[quant::q3_hifi::kQ3KBytes];
      quant::q3_hifi::q3k::quantize(x.data(), imp, q);
      quant::q3_hifi::saving_choice(x.data(), imp, quant::q3_hifi::q3k::super_scale(q), set);
      for (int k = 0; k < kOutliers; ++k) EXPECT_EQ(set[k], 32 * k + 5) << "block " << t;
    }
  }
}

// On random heavy-tailed rows, block by block: saving <= joint <= magnitude, and the stored
// block has the error reported.
TEST(Q3HifiSaving, NeverWorseThanJointOrMagnitude) {
  const auto& d = data();
  for (const float* imp : {static_cast<const float*>(nullptr), d.importance.data()}) {
    double sum_s = 0, sum_j = 0, sum_m = 0;
    int better = 0;
    const int64_t blocks = kRows * kCols / kBlockSize;
    for (int64_t b = 0; b < blocks; ++b) {
      const float* x = d.x.data() + b * kBlockSize;
      const float* w = imp ? imp + (b * kBlockSize) % kCols : nullptr;
      Block bm, bj, bs;
      const double em = quant::q3_hifi::quantize_block(x, w, Selection::kMagnitude, bm).error;
      const double ej = quant::q3_hifi::quantize_block(x, w, Selection::kJoint, bj).error;
      const double es = quant::q3_hifi::quantize_block(x, w, Selection::kSaving, bs).error;
      EXPECT_LE(es, ej) << "block " << b;
      EXPECT_NEAR(es, error_of(bs, x, w), 1e-9 * es);
      for (int k = 1; k < kOutliers; ++k) EXPECT_LT(bs.idx[k - 1], bs.idx[k]);
      better += es < ej;
      sum_s += es, sum_j += ej, sum_m += em;
    }
    EXPECT_LT(sum_s, sum_j) << (imp ? "with" : "without") << " importance";
    EXPECT_LT(sum_s, sum_m) << (imp ? "with" : "without") << " importance";
    EXPECT_GT(better, blocks / 4) << "the saving search should pay on many blocks";
  }
}

// The codec's own quantize is the saving search; the grid describes exactly what fit stored.
TEST(Q3HifiGrid, FitDescribesTheBlockAndStoreKeepsIt) {
  const auto& d = data();
  const quant::GridOps* ops = quant::codec(GgmlType::Q3_HIFI).grid;
  ASSERT_NE(ops, nullptr);
  EXPECT_EQ(ops->n_variants, 1);
  for (int64_t b = 0; b < 8; ++b) {
    const float* x = d.x.data() + b * kBlockSize;
    const float* w = d.importance.data() + (b * kBlockSize) % kCols;
    Block fitted, want;
    quant::BlockGrid g;
    ops->fit(x, w, 0, &fitted, g);
    quant::q3_hifi::quantize_block(x, w, Selection::kSaving, want);
    EXPECT_EQ(std::memcmp(&fitted, &want, sizeof(Block)), 0) << "block " << b;
    float y[kBlockSize];
    quant::q3_hifi::dequantize_block(fitted, y);
    for (int i = 0; i < kBlockSize; ++i) EXPECT_EQ(g.value(i, g.q[i]), y[i]) << "block " << b << " element " << i;
    // An outlier decodes to its value whatever its code; others move with theirs.
    for (int k = 0; k < kOutliers; ++k) {
      const int i = fitted.idx[k];
      EXPECT_EQ(g.step[i], 0.0f);
      EXPECT_EQ(g.value(i, g.qmin), f16_to_f32(fitted.val[k]));
      EXPECT_EQ(g.nearest(i, x[i] + 1.0f), g.q[i]);
    }
    // Store the fitted codes: the same bytes. Store other codes: the Q3_K part changes, the
    // outliers stay.
    Block stored = fitted;
    ops->store(g, &stored);
    EXPECT_EQ(std::memcmp(&stored, &fitted, sizeof(Block)), 0);
    for (int i = 0; i < kBlockSize; ++i) g.q[i] = int8_t(g.step[i] == 0 ? g.q[i] : g.qmax);
    ops->store(g, &stored);
    quant::q3_hifi::dequantize_block(stored, y);
    for (int i = 0; i < kBlockSize; ++i) EXPECT_EQ(y[i], g.value(i, g.q[i])) << "element " << i;
    EXPECT_EQ(std::memcmp(stored.idx, fitted.idx, sizeof stored.idx), 0);
    EXPECT_EQ(std::memcmp(stored.val, fitted.val, sizeof stored.val), 0);
  }
}

}  // namespace
}  // namespace imq
