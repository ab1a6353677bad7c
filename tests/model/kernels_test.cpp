// Matmul kernels against their scalar references: the Highway vector primitives on every SIMD
// target this CPU runs, and matmul (SGEMM tiles and dot paths) for float and block types.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "core/fp16.h"
#include "imq/error.h"
#include "imq/ggml_types.h"
#include "imq/quant.h"
#include "kernels/matmul.h"
#include "kernels/vec.h"
#include "synth_util.h"

namespace imq {
namespace {

using test::randn;

TEST(VecKernels, EverySimdTargetMatchesTheReference) {
  const auto targets = kernels::simd_targets();
  ASSERT_FALSE(targets.empty());
  std::string names;
  for (int64_t target : targets) {
    kernels::use_simd_target(target);
    names += std::string(names.empty() ? "" : " ") + kernels::simd_target_name();
    SCOPED_TRACE(kernels::simd_target_name());
    for (int64_t n : {1, 7, 16, 31, 64, 100, 1000}) {
      const auto a = randn(size_t(n), 1), b = randn(size_t(n), 2);
      std::vector<uint16_t> h(a.size()), bh(a.size());
      for (size_t i = 0; i < a.size(); ++i) h[i] = f32_to_f16(a[i]), bh[i] = f32_to_bf16(a[i]);
      const float tol = 1e-5f * float(n);
      EXPECT_NEAR(kernels::dot_f32(a.data(), b.data(), n), kernels::vec_ref::dot_f32(a.data(), b.data(), n), tol);
      EXPECT_NEAR(kernels::dot_f16(h.data(), b.data(), n), kernels::vec_ref::dot_f16(h.data(), b.data(), n), tol);
      EXPECT_NEAR(kernels::dot_bf16(bh.data(), b.data(), n), kernels::vec_ref::dot_bf16(bh.data(), b.data(), n), tol);
      EXPECT_EQ(kernels::max_f32(a.data(), n), *std::max_element(a.begin(), a.end()));
      std::vector<float> e = a, e_ref = a;
      const double s = kernels::exp_sub_sum(e.data(), n, 0.5f);
      const double s_ref = kernels::vec_ref::exp_sub_sum(e_ref.data(), n, 0.5f);
      EXPECT_NEAR(s, s_ref, 1e-6 * s_ref);
      for (size_t i = 0; i < e.size(); ++i) ASSERT_NEAR(e[i], e_ref[i], 4e-7f * e_ref[i]) << i;
      kernels::scale_f32(e.data(), n, 0.25f);
      for (size_t i = 0; i < e.size(); ++i) ASSERT_FLOAT_EQ(e[i], e_ref[i] * 0.25f) << i;
      std::vector<float> out(a.size());
      kernels::f16_to_f32_row(h.data(), out.data(), n);
      for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(out[i], f16_to_f32(h[i])) << i;
      kernels::bf16_to_f32_row(bh.data(), out.data(), n);
      for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(out[i], bf16_to_f32(bh[i])) << i;
      // Three rows of n: bit-identical to the scalar loop (float squares are exact in double).
      const auto rows = randn(size_t(3 * n), 3, 10.0f);
      std::vector<double> sq(size_t(n), 0.5), sq_ref(size_t(n), 0.5);
      kernels::add_squares(rows.data(), 3, n, sq.data());
      kernels::vec_ref::add_squares(rows.data(), 3, n, sq_ref.data());
      EXPECT_EQ(sq, sq_ref);
    }
  }
  kernels::use_simd_target(0);
  RecordProperty("simd_targets", names);
  std::printf("SIMD targets tested: %s\n", names.c_str());
}

// The activation rounding kernels give the bits of their scalar references on every target,
// on rows with outliers, an all-zero block and a value of largest magnitude that is negative.
TEST(VecKernels, ActivationRoundingMatchesTheReferenceOnEveryTarget) {
  auto x = randn(1024, 11, 3.0f);
  for (size_t i = 0; i < x.size(); i += 37) x[i] *= 40.0f;
  for (size_t i = 256; i < 512; ++i) x[i] = 0.0f;
  x[700] = -1000.0f;
  x.push_back(70000.0f);  // F16 overflow and a subnormal, outside the quantized blocks
  x.push_back(3e-7f);
  for (int64_t target : kernels::simd_targets()) {
    kernels::use_simd_target(target);
    SCOPED_TRACE(kernels::simd_target_name());
    std::vector<float> got(x.size()), want(x.size());
    kernels::round_q8_0(x.data(), 1024, got.data());
    kernels::vec_ref::round_q8_0(x.data(), 1024, want.data());
    for (size_t i = 0; i < 1024; ++i) ASSERT_EQ(got[i], want[i]) << "Q8_0 " << i;
    kernels::round_q8_k(x.data(), 1024, got.data());
    kernels::vec_ref::round_q8_k(x.data(), 1024, want.data());
    for (size_t i = 0; i < 1024; ++i) ASSERT_EQ(got[i], want[i]) << "Q8_K " << i;
    kernels::round_f16(x.data(), int64_t(x.size()), got.data());
    kernels::vec_ref::round_f16(x.data(), int64_t(x.size()), want.data());
    for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(got[i], want[i]) << "F16 " << i;
    std::vector<float> in_place(x.begin(), x.begin() + 1024);
    kernels::round_q8_k(in_place.data(), 1024, in_place.data());
    kernels::vec_ref::round_q8_k(x.data(), 1024, want.data());
    EXPECT_TRUE(std::equal(in_place.begin(), in_place.end(), want.begin()));
  }
  kernels::use_simd_target(0);
}

class MatmulTypes : public ::testing::TestWithParam<GgmlType> {};

TEST_P(MatmulTypes, MatchesReferenceForAllBatchSizes) {
  const quant::Codec* codec = quant::find_codec(GetParam());
  if (!codec) GTEST_SKIP() << "no codec for " << ggml_type_display_name(GetParam()) << " yet";
  const int64_t ne0 = 512, ne1 = 70;  // ne1 not a multiple of the tile or the thread split
  const auto wf = randn(size_t(ne0 * ne1), 3, 0.1f);
  std::vector<uint8_t> data(quant::row_size(*codec, ne0) * size_t(ne1));
  codec->quantize(wf.data(), data.data(), ne1, ne0, nullptr);
  const kernels::WeightView w = kernels::make_weight_view("test.weight", *codec, ne0, ne1, 1, data.data());
  for (int threads : {1, 3}) {
    ThreadPool pool(threads);
    kernels::MatmulContext ctx(pool, ne0);
    for (int64_t n : {1, 3, 15, 16, 37}) {
      const auto x = randn(size_t(n * ne0), 4);
      std::vector<float> y(size_t(n * ne1)), ref(size_t(n * ne1));
      kernels::matmul(w, x.data(), n, y.data(), ctx);
      kernels::matmul_ref(w, x.data(), n, ref.data());
      for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], ref[i], 2e-4) << "n=" << n << " i=" << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, MatmulTypes,
                         ::testing::Values(GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0,
                                           GgmlType::Q4_0, GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::IQ1_M,
                                           GgmlType::IQ2_XXS, GgmlType::IQ2_S, GgmlType::IQ3_XXS, GgmlType::IQ3_S),
                         [](const auto& info) { return ggml_type_display_name(info.param); });

TEST(Matmul, ThreeDimensionalWeightNeedsAnExpert) {
  ThreadPool pool(1);
  kernels::MatmulContext ctx(pool, 8);
  const std::vector<float> data(8 * 4 * 2);
  const auto w = kernels::make_weight_view("blk.0.ffn_up_exps.weight", quant::codec(GgmlType::F32),
                                           8, 4, 2, reinterpret_cast<const uint8_t*>(data.data()));
  float x[8] = {}, y[4];
  EXPECT_THROW(kernels::matmul(w, x, 1, y, ctx), Error);
}

}  // namespace
}  // namespace imq
