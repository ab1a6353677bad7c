// The kernel table (kernels/type_kernels.h): every codec has a row, and each row's ggml-exact
// product is the kernel llama.cpp uses for that type, bit for bit.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "core/thread_pool.h"
#include "imq/ggml_types.h"
#include "imq/quant.h"
#include "kernels/activations.h"
#include "kernels/ggml_exact.h"
#include "kernels/matmul.h"
#include "kernels/type_kernels.h"
#include "synth_util.h"

namespace imq {
namespace {

namespace gx = kernels::ggml;
using test::randn;

struct Weight {
  std::vector<uint8_t> data;
  kernels::WeightView view;
};

Weight make_weight(GgmlType type, int64_t ne0, int64_t ne1) {
  Weight w;
  const quant::Codec& codec = quant::codec(type);
  const auto wf = randn(size_t(ne0 * ne1), 7, 0.05f);
  w.data.resize(quant::row_size(codec, ne0) * size_t(ne1));
  codec.quantize(wf.data(), w.data.data(), ne1, ne0, nullptr);
  w.view = kernels::make_weight_view("w", codec, ne0, ne1, 1, w.data.data());
  return w;
}

// The table's product for one weight, through an ExactInput as the ggml backend makes it.
std::vector<float> table_product(const kernels::WeightView& w, const std::vector<float>& x, int64_t n,
                                 bool expert_rows, bool router, kernels::MatmulContext& ctx,
                                 gx::Cpu cpu = gx::Cpu::Avx2) {
  gx::ExactBuffers b;
  b.rounded.resize(x.size());
  gx::ExactInput in(b, x.data(), n, w.ne0, ctx.pool(), cpu);
  std::vector<float> y(size_t(n * w.ne1));
  if (router)
    w.kernels->exact_router(w, in, y.data(), ctx);
  else
    w.kernels->exact(w, in, y.data(), ctx, expert_rows);
  return y;
}

TEST(TypeKernels, EveryCodecHasARowWithAnExactProduct) {
  for (const quant::Codec& c : quant::all_codecs()) {
    const kernels::TypeKernels& k = kernels::type_kernels(c);
    EXPECT_NE(k.exact, nullptr) << c.name;
    EXPECT_NE(k.exact_router, nullptr) << c.name;
    EXPECT_EQ(k.float_rows, c.type == GgmlType::F32) << c.name;
  }
}

TEST(TypeKernels, ExactProductIsTheKernelLlamaCppUsesForTheType) {
  ThreadPool pool(2);
  const int64_t n = 5, ne1 = 24;
  for (GgmlType type : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q5_0,
                        GgmlType::Q8_0, GgmlType::IQ4_NL, GgmlType::Q2_K, GgmlType::Q4_K,
                        GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::IQ4_XS, GgmlType::Q3_HIFI,
                        GgmlType::IQ1_S, GgmlType::IQ1_M, GgmlType::IQ2_XXS, GgmlType::IQ2_XS,
                        GgmlType::IQ2_S, GgmlType::IQ3_XXS, GgmlType::IQ3_S}) {
    const std::string name = ggml_type_display_name(type);
    const int64_t ne0 = 512;
    kernels::MatmulContext ctx(pool, ne0);
    const Weight w = make_weight(type, ne0, ne1);
    const auto x = randn(size_t(n * ne0), 9);
    for (bool experts : {false, true}) {
      std::vector<float> want(size_t(n * ne1));
      if (type == GgmlType::Q5_0 || type == GgmlType::Q8_0) {
        gx::ActCodes a;
        gx::quantize_q8_0(x.data(), n, ne0, a, pool);
        gx::matmul_q8_0(w.view, a, want.data(), ctx);
      } else if (type == GgmlType::Q4_K || type == GgmlType::Q6_K) {
        gx::ActCodes a;
        gx::quantize_q8_k(x.data(), n, ne0, a, pool);
        gx::matmul_q8_k(w.view, a, want.data(), ctx, experts);
      } else {  // everything else: the float product of the activations as ggml converts them
        std::vector<float> r(x.size());
        kernels::round_activations(w.view.codec->act, x.data(), n, ne0, r.data());
        kernels::matmul(w.view, r.data(), n, want.data(), ctx);
      }
      EXPECT_EQ(table_product(w.view, x, n, experts, false, ctx), want) << name << " experts " << experts;
    }
  }
}

// SessionOptions::exact_products = false (--products fast): the activations rounded as the exact
// product rounds them, then SGEMM on dequantized tiles (20 rows: the gemm path). The integer
// block sums are exact either way, so only the order of float sums differs: within the bound
// of a 512-term float sum, 512·eps·Σ|w·x|.
TEST(TypeKernels, FastProductDiffersFromTheExactOneOnlyInTheOrderOfSums) {
  ThreadPool pool(2);
  const int64_t n = 20, ne1 = 24, ne0 = 512;
  kernels::MatmulContext ctx(pool, ne0);
  const auto x = randn(size_t(n * ne0), 9);
  for (GgmlType type : {GgmlType::Q5_0, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q6_K}) {
    const Weight w = make_weight(type, ne0, ne1);
    const auto exact = table_product(w.view, x, n, false, false, ctx);
    std::vector<float> xr(x.size()), wf(size_t(ne0 * ne1)), fast(exact.size());
    kernels::round_activations(w.view.codec->act, x.data(), n, ne0, xr.data());
    kernels::matmul(w.view, xr.data(), n, fast.data(), ctx);
    kernels::dequantize_rows(w.view, 0, ne1, wf.data());
    for (int64_t t = 0; t < n; ++t)
      for (int64_t r = 0; r < ne1; ++r) {
        double mag = 0;
        for (int64_t j = 0; j < ne0; ++j) mag += std::fabs(double(wf[size_t(r * ne0 + j)]) * xr[size_t(t * ne0 + j)]);
        EXPECT_NEAR(fast[size_t(t * ne1 + r)], exact[size_t(t * ne1 + r)], 512 * 6e-8 * mag)
            << ggml_type_display_name(type) << " row " << t << " output " << r;
      }
  }
}

// For an AVX512-BF16 build, BF16 weights take VDPBF16PS (tinyBLAS, or vec_dot's two
// accumulators for expert rows) and the F32 router sixteen lanes; both stay within float
// rounding of the AVX2 products and differ from them in the last bits.
TEST(TypeKernels, Avx512Bf16BuildHasItsOwnBf16AndRouterProducts) {
  ThreadPool pool(2);
  const int64_t n = 5, ne1 = 24, ne0 = 512;
  kernels::MatmulContext ctx(pool, ne0);
  const auto x = randn(size_t(n * ne0), 21);
  {
    const Weight w = make_weight(GgmlType::BF16, ne0, ne1);
    std::vector<float> xb(x.size());
    kernels::round_activations(quant::ActFormat::BF16, x.data(), n, ne0, xb.data());
    for (bool experts : {false, true}) {
      std::vector<float> want(size_t(n * ne1));
      gx::matmul_bf16(w.view, xb.data(), n, want.data(), ctx, experts);
      const auto got = table_product(w.view, x, n, experts, false, ctx, gx::Cpu::Avx512Bf16);
      EXPECT_EQ(got, want) << "experts " << experts;
      const auto avx2 = table_product(w.view, x, n, experts, false, ctx);
      EXPECT_NE(got, avx2);
      for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], avx2[i], 1e-5 * (1 + std::fabs(avx2[i])));
    }
  }
  {
    const Weight w = make_weight(GgmlType::F32, ne0, ne1);
    std::vector<float> want(size_t(n * ne1));
    gx::matmul_f32_lanes(w.view, x.data(), n, want.data(), gx::Cpu::Avx512Bf16);
    EXPECT_EQ(table_product(w.view, x, n, false, true, ctx, gx::Cpu::Avx512Bf16), want);
    EXPECT_NE(table_product(w.view, x, n, false, true, ctx), want);
  }
}

TEST(TypeKernels, OddF16RowsAndTheF32RouterTakeGgmlsOwnProducts) {
  ThreadPool pool(2);
  const int64_t n = 3, ne1 = 9;
  {
    const int64_t ne0 = 172;  // not a multiple of 8: ggml_vec_dot_f16, not tinyBLAS
    kernels::MatmulContext ctx(pool, ne0);
    const Weight w = make_weight(GgmlType::F16, ne0, ne1);
    const auto x = randn(size_t(n * ne0), 3);
    std::vector<float> x16(x.size()), want(size_t(n * ne1));
    kernels::round_activations(kernels::ActFormat::F16, x.data(), n, ne0, x16.data());
    gx::matmul_f16(w.view, x16.data(), n, want.data(), ctx);
    EXPECT_EQ(table_product(w.view, x, n, false, false, ctx), want);
  }
  {
    const int64_t ne0 = 64;
    kernels::MatmulContext ctx(pool, ne0);
    const Weight w = make_weight(GgmlType::F32, ne0, ne1);
    const auto x = randn(size_t(n * ne0), 4);
    std::vector<float> lanes(size_t(n * ne1)), sgemm(size_t(n * ne1));
    gx::matmul_f32_lanes(w.view, x.data(), n, lanes.data());
    kernels::matmul(w.view, x.data(), n, sgemm.data(), ctx);
    EXPECT_EQ(table_product(w.view, x, n, false, true, ctx), lanes);
    EXPECT_EQ(table_product(w.view, x, n, false, false, ctx), sgemm);  // other F32 weights: SGEMM
  }
}

// Issue 25: the forward pass is type-agnostic; adding a type never touches src/model/.
TEST(TypeKernels, NoFileUnderSrcModelNamesAQuantType) {
  const std::filesystem::path dir = std::filesystem::path(IMQ_SOURCE_DIR) / "src" / "model";
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir;
  int files = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path());
    std::stringstream text;
    text << in.rdbuf();
    ++files;
    for (const char* word : {"GgmlType::", "exact_q8", "matmul_q8"})
      EXPECT_EQ(text.str().find(word), std::string::npos) << e.path() << " names " << word;
  }
  EXPECT_GT(files, 5);
}

}  // namespace
}  // namespace imq
