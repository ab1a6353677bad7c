// Single-thread speed of the i-quants' kernel-table rows (kernels/iq_hwy.cpp) against the
// generic path they replace: rows to float (the codec's scalar dequantize vs to_float, what
// every SGEMM tile of a perplexity run costs) and one row · x (dequantize + dot_f32 vs the fused
// dot, what generation costs per weight row), in bytes of F32 output per second. Run: build
// with -DIMQ_BUILD_BENCH=ON, then ./build/iq_kernels_bench [--benchmark_filter=IQ2_XXS].
#include <benchmark/benchmark.h>

#include <vector>

#include "common/random_rows.h"
#include "imq/quant.h"
#include "kernels/type_kernels.h"
#include "kernels/vec.h"

namespace {

constexpr int64_t kRows = 16, kCols = 4096;  // 256 KiB of F32 per iteration

struct Input {
  std::vector<uint8_t> q;
  std::vector<float> x;  // one activation row
};

// N(0, 0.02) weights quantized with importance (the i-quants below 3 bits need it in practice).
Input input(const imq::quant::Codec& c) {
  const auto in = imq::test::random_rows({.seed = 1, .rows = kRows, .cols = kCols, .sigma = 0.02f});
  Input r;
  r.q.resize(imq::quant::row_size(c, kCols) * size_t(kRows));
  c.quantize(in.x.data(), r.q.data(), kRows, kCols, in.importance.data());
  r.x.assign(in.x.begin(), in.x.begin() + kCols);
  return r;
}

void to_float(benchmark::State& state, imq::GgmlType type, bool simd) {
  const auto& c = imq::quant::codec(type);
  const auto to_float = imq::kernels::type_kernels(c).to_float;
  const Input in = input(c);
  std::vector<float> y(size_t(kRows * kCols));
  for (auto _ : state) {
    if (simd)
      to_float(in.q.data(), y.data(), kRows * kCols);
    else
      c.dequantize(in.q.data(), y.data(), kRows * kCols);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * kRows * kCols * int64_t(sizeof(float)));
}

void dot(benchmark::State& state, imq::GgmlType type, bool simd) {
  const auto& c = imq::quant::codec(type);
  const auto dot = imq::kernels::type_kernels(c).dot;
  const Input in = input(c);
  const size_t row_bytes = imq::quant::row_size(c, kCols);
  std::vector<float> tmp(static_cast<size_t>(kCols));
  for (auto _ : state) {
    float s = 0;
    for (int64_t r = 0; r < kRows; ++r) {
      const uint8_t* row = in.q.data() + size_t(r) * row_bytes;
      if (simd) {
        s += dot(row, in.x.data(), kCols);
      } else {
        c.dequantize(row, tmp.data(), kCols);
        s += imq::kernels::dot_f32(tmp.data(), in.x.data(), kCols);
      }
    }
    benchmark::DoNotOptimize(s);
  }
  state.SetBytesProcessed(state.iterations() * kRows * kCols * int64_t(sizeof(float)));
}

#define IMQ_IQ_BENCH(T)                                          \
  BENCHMARK_CAPTURE(to_float, T##_codec, imq::GgmlType::T, false); \
  BENCHMARK_CAPTURE(to_float, T##_simd, imq::GgmlType::T, true);   \
  BENCHMARK_CAPTURE(dot, T##_codec, imq::GgmlType::T, false);      \
  BENCHMARK_CAPTURE(dot, T##_simd, imq::GgmlType::T, true)

IMQ_IQ_BENCH(IQ1_S);
IMQ_IQ_BENCH(IQ1_M);
IMQ_IQ_BENCH(IQ2_XXS);
IMQ_IQ_BENCH(IQ2_XS);
IMQ_IQ_BENCH(IQ2_S);
IMQ_IQ_BENCH(IQ3_XXS);
IMQ_IQ_BENCH(IQ3_S);
IMQ_IQ_BENCH(IQ4_NL);
IMQ_IQ_BENCH(IQ4_XS);

}  // namespace
