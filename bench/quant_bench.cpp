// Single-thread throughput of every block codec (float, legacy, IQ4, K-quants), in bytes of F32
// data per second: quantize without importance (llama-quantize without an imatrix), with
// importance, and dequantize. Run: build with -DIMQ_BUILD_BENCH=ON -DCMAKE_BUILD_TYPE=Release,
// then ./build/quant_bench [--benchmark_filter=Q4_K].
#include <benchmark/benchmark.h>

#include <vector>

#include "common/random_rows.h"
#include "imq/quant.h"

namespace {

constexpr int64_t kRows = 16, kCols = 4096;  // 256 KiB of F32 per iteration

// N(0, 0.02) weights (a trained layer's scale), importance spread over e^0 .. e^4.
const imq::test::RandomRows& input() {
  static const imq::test::RandomRows in =
      imq::test::random_rows({.seed = 1, .rows = kRows, .cols = kCols, .sigma = 0.02f});
  return in;
}

void quantize(benchmark::State& state, imq::GgmlType type, bool with_importance) {
  const auto& c = imq::quant::codec(type);
  const auto& in = input();
  std::vector<uint8_t> out(imq::quant::row_size(c, kCols) * size_t(kRows));
  const float* importance = with_importance ? in.importance.data() : nullptr;
  for (auto _ : state) {
    c.quantize(in.x.data(), out.data(), kRows, kCols, importance);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * kRows * kCols * int64_t(sizeof(float)));
}

void dequantize(benchmark::State& state, imq::GgmlType type) {
  const auto& c = imq::quant::codec(type);
  const auto& in = input();
  std::vector<uint8_t> q(imq::quant::row_size(c, kCols) * size_t(kRows));
  c.quantize(in.x.data(), q.data(), kRows, kCols, nullptr);
  std::vector<float> y(in.x.size());
  for (auto _ : state) {
    c.dequantize(q.data(), y.data(), kRows * kCols);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * kRows * kCols * int64_t(sizeof(float)));
}

#define IMQ_CODEC_BENCH(T)                                                              \
  BENCHMARK_CAPTURE(quantize, T##_plain, imq::GgmlType::T, false);                      \
  BENCHMARK_CAPTURE(quantize, T##_importance, imq::GgmlType::T, true);                  \
  BENCHMARK_CAPTURE(dequantize, T, imq::GgmlType::T)

IMQ_CODEC_BENCH(F16);
IMQ_CODEC_BENCH(BF16);
IMQ_CODEC_BENCH(Q4_0);
IMQ_CODEC_BENCH(Q4_1);
IMQ_CODEC_BENCH(Q5_0);
IMQ_CODEC_BENCH(Q5_1);
IMQ_CODEC_BENCH(Q8_0);
IMQ_CODEC_BENCH(IQ4_NL);
IMQ_CODEC_BENCH(IQ4_XS);
IMQ_CODEC_BENCH(Q2_K);
IMQ_CODEC_BENCH(Q3_K);
IMQ_CODEC_BENCH(Q4_K);
IMQ_CODEC_BENCH(Q5_K);
IMQ_CODEC_BENCH(Q6_K);
IMQ_CODEC_BENCH(Q8_K);

}  // namespace
