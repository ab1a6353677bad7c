// imq's K-quant search (k_imq_rows; Codec::quantize_imq where the type offers it to --search imq,
// src/quant/kquants/search_imq.h): on every block of random
// and real rows, with and without importance, the imq block decodes (reference dequantizer and
// the spec decoder) with a weighted error (its objective, k_imq_weights) <= the reference
// block's, and lower in total; the
// output is deterministic and row-independent (so independent of the thread split).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kquant_test_util.h"
#include "quant/kquants/search_imq.h"
#include "test_util.h"

namespace imq {
namespace {

const GgmlType kTypes[] = {GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K,
                           GgmlType::Q6_K};

struct Totals {
  double ref = 0, imq = 0;
  int64_t blocks = 0, better = 0;
};

// Quantizes rows both ways and checks every block; returns the summed errors.
Totals compare_rows(GgmlType type, const float* x, int64_t nrows, int64_t n_per_row,
                    const float* importance) {
  const quant::Codec& c = quant::codec(type);
  const auto imq_rows = quant::k_imq_rows(type);
  EXPECT_NE(imq_rows, nullptr);
  const size_t bytes = quant::row_size(c, n_per_row) * size_t(nrows);
  std::vector<uint8_t> ref(bytes), imq(bytes);
  EXPECT_EQ(c.quantize(x, ref.data(), nrows, n_per_row, importance), bytes);
  EXPECT_EQ(imq_rows(x, imq.data(), nrows, n_per_row, importance), bytes);
  const int64_t n = nrows * n_per_row;
  std::vector<float> yr(static_cast<size_t>(n)), yi(static_cast<size_t>(n));
  c.dequantize(ref.data(), yr.data(), n);
  c.dequantize(imq.data(), yi.data(), n);
  const std::vector<float> ys = test::spec_decode_k_all(type, imq.data(), n);
  Totals t;
  int bad = 0, spec_bad = 0;
  for (int64_t b = 0; b < n / 256; ++b) {
    const float* xb = x + b * 256;
    const int64_t col = (b * 256) % n_per_row;
    float w[256];
    quant::k_imq_weights(type, xb, importance ? importance + col : nullptr, w);
    const double er = quant::k_block_error(xb, yr.data() + b * 256, w);
    const double ei = quant::k_block_error(xb, yi.data() + b * 256, w);
    for (int i = 0; i < 256; ++i) {
      const float a = ys[size_t(b * 256 + i)], e = yi[size_t(b * 256 + i)];
      spec_bad += !(a == e || (std::isnan(a) && std::isnan(e)));
    }
    if (!std::isfinite(er)) {  // llama.cpp's own NaN (e.g. all-zero importance): kept as is
      const size_t bs = c.type_size, off = size_t(b) * bs;
      EXPECT_EQ(std::memcmp(ref.data() + off, imq.data() + off, bs), 0);
      continue;
    }
    bad += !(ei <= er);
    t.ref += er;
    t.imq += ei;
    t.better += ei < er;
    ++t.blocks;
  }
  EXPECT_EQ(bad, 0) << "blocks where imq is worse than the reference";
  EXPECT_EQ(spec_bad, 0) << "imq blocks the spec decoder reads differently";
  return t;
}

std::vector<float> random_rows(std::mt19937& rng, int64_t n, int kind) {
  std::normal_distribution<float> g(0.f, 1.f);
  std::student_t_distribution<float> heavy(3.f);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) {
    switch (kind) {
      case 0: v = 0.02f * g(rng); break;
      case 1: v = 0.01f * heavy(rng); break;
      case 2: v = u(rng) + 0.3f; break;  // offset, uniform
      default: v = (rng() % 50 == 0 ? 20.f : 1.f) * g(rng); break;  // outliers
    }
  }
  return x;
}

// The objective: llama.cpp's weights without importance (and for Q6_K), importance times
// (sigma^2 + x^2)^(3/2) with it.
TEST(ImqWeights, ImportanceTimesMagnitudeTermToTheThreeHalves) {
  std::mt19937 rng(5);
  const auto x = random_rows(rng, 256, 1);
  std::vector<float> qw(256);
  for (size_t i = 0; i < qw.size(); ++i) qw[i] = 0.5f + float(i % 5);
  float w[256], ref[256];
  for (GgmlType t : kTypes) {
    quant::k_imq_weights(t, x.data(), nullptr, w);
    quant::k_error_weights(t, x.data(), nullptr, ref);
    EXPECT_EQ(std::memcmp(w, ref, sizeof w), 0) << ggml_type_display_name(t);
    quant::k_imq_weights(t, x.data(), qw.data(), w);
    if (t == GgmlType::Q6_K) {
      quant::k_error_weights(t, x.data(), qw.data(), ref);
      EXPECT_EQ(std::memcmp(w, ref, sizeof w), 0);
      continue;
    }
    double sum_x2 = 0;
    for (float v : x) sum_x2 += double(v) * v;
    const double sigma2 = (t == GgmlType::Q2_K ? 1 : 2) * sum_x2 / 256;
    for (int i = 0; i < 256; ++i) {
      const double m = sigma2 + double(x[size_t(i)]) * x[size_t(i)];
      const double want = qw[size_t(i)] * m * std::sqrt(m);
      EXPECT_NEAR(w[i], want, 1e-5 * want) << i;
    }
  }
}

// --search imq takes each type's search where its codec row offers one: all but Q5_K's
// (register.cpp: it lost to llama.cpp's on the MoE model).
TEST(ImqRows, EveryKTypeButQ5KOffersItsSearch) {
  for (GgmlType t : kTypes) {
    const quant::Codec& c = quant::codec(t);
    EXPECT_EQ(c.quantize_imq == nullptr, t == GgmlType::Q5_K) << ggml_type_display_name(t);
    if (c.quantize_imq) {
      EXPECT_EQ(c.quantize_imq, quant::k_imq_rows(t));
    }
  }
  EXPECT_EQ(quant::k_imq_rows(GgmlType::Q8_0), nullptr);
}

class ImqSearch : public ::testing::TestWithParam<GgmlType> {};

TEST_P(ImqSearch, NeverWorseOnRandomRowsAndBetterInTotal) {
  const GgmlType type = GetParam();
  std::mt19937 rng(1234 + uint32_t(type));
  const int64_t n_per_row = 512, nrows = 24;
  std::vector<float> imp(n_per_row);
  std::gamma_distribution<float> gam(0.7f, 1.f);
  for (auto& v : imp) v = gam(rng);
  for (int kind = 0; kind < 4; ++kind) {
    SCOPED_TRACE("distribution " + std::to_string(kind));
    const auto x = random_rows(rng, n_per_row * nrows, kind);
    for (const float* importance : std::vector<const float*>{nullptr, imp.data()}) {
      const Totals t = compare_rows(type, x.data(), nrows, n_per_row, importance);
      EXPECT_LT(t.imq, t.ref) << "imq lowers the summed weighted error"
                              << (importance ? " (importance)" : "");
      EXPECT_GT(t.better, t.blocks / 10);
    }
  }
}

TEST_P(ImqSearch, DeterministicAndRowIndependent) {
  const GgmlType type = GetParam();
  const quant::Codec& c = quant::codec(type);
  std::mt19937 rng(99);
  const int64_t n_per_row = 768, nrows = 6;
  const auto x = random_rows(rng, n_per_row * nrows, 1);
  std::vector<float> imp(n_per_row, 1.f);
  for (int64_t i = 0; i < n_per_row; ++i) imp[size_t(i)] = 0.1f + float(i % 7);
  const size_t row_bytes = quant::row_size(c, n_per_row);
  std::vector<uint8_t> all(row_bytes * nrows), again(row_bytes * nrows), one(row_bytes * nrows);
  const auto imq_rows = quant::k_imq_rows(type);
  imq_rows(x.data(), all.data(), nrows, n_per_row, imp.data());
  imq_rows(x.data(), again.data(), nrows, n_per_row, imp.data());
  for (int64_t r = nrows - 1; r >= 0; --r)  // one row at a time, in reverse order
    imq_rows(x.data() + r * n_per_row, one.data() + size_t(r) * row_bytes, 1, n_per_row,
             imp.data());
  EXPECT_EQ(all, again);
  EXPECT_EQ(all, one);
}

TEST_P(ImqSearch, DegenerateBlocksStayFinite) {
  const GgmlType type = GetParam();
  std::vector<float> x(1024, 0.f);
  for (int i = 256; i < 512; ++i) x[size_t(i)] = 1.f;           // constant block
  x[600] = 3.f;                                                  // one spike
  for (int i = 768; i < 1024; ++i) x[size_t(i)] = 1e-20f * float(i % 5);  // tiny
  compare_rows(type, x.data(), 1, 1024, nullptr);
  std::vector<float> imp(1024, 0.f);  // all-zero importance
  compare_rows(type, x.data(), 1, 1024, imp.data());
}

// Real weights and importance: the codec256 model and its llama-imatrix file.
TEST_P(ImqSearch, NeverWorseOnRealRows) {
  IMQ_NEED_SHARED(model_path, "models/codec256-f32.gguf");
  IMQ_NEED_SHARED(imatrix_path, "reference/codec256/imatrix-calib-c128.gguf");
  const GgmlType type = GetParam();
  const auto model = gguf::File::open(model_path);
  const auto imatrix = gguf::File::open(imatrix_path);
  int checked = 0;
  Totals sum_plain, sum_imp;
  for (const auto& t : model.tensors()) {
    if (t.type != GgmlType::F32 || t.ne[0] % 256 != 0 || t.ne[1] < 2) continue;
    if (checked >= 4) break;
    const auto importance = test::imatrix_importance(imatrix, t.name);
    if (!importance) continue;
    SCOPED_TRACE(t.name);
    const auto x = test::read_f32_tensor(model, t);
    const int64_t nrows = std::min<int64_t>(t.ne[1], 64);
    const Totals a = compare_rows(type, x.data(), nrows, t.ne[0], nullptr);
    const Totals b = compare_rows(type, x.data(), nrows, t.ne[0], importance->data());
    sum_plain.ref += a.ref;
    sum_plain.imq += a.imq;
    sum_imp.ref += b.ref;
    sum_imp.imq += b.imq;
    ++checked;
  }
  EXPECT_GT(checked, 0);
  EXPECT_LT(sum_plain.imq, sum_plain.ref);
  EXPECT_LT(sum_imp.imq, sum_imp.ref);
  std::printf("%s real rows: weighted error imq/ref %.4f (no imatrix), %.4f (imatrix)\n",
              ggml_type_display_name(type).c_str(), sum_plain.imq / sum_plain.ref,
              sum_imp.imq / sum_imp.ref);
}

INSTANTIATE_TEST_SUITE_P(AllKQuants, ImqSearch, ::testing::ValuesIn(kTypes),
                         [](const auto& info) {
                           return ggml_type_display_name(info.param);
                         });

}  // namespace
}  // namespace imq
