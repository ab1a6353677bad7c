// Single-thread cost and error of Q3_HIFI's outlier search against plain Q3_K: quantize with
// and without importance (Q3_K; Q3_HIFI with the fork's magnitude choice; Q3_HIFI with imq's
// joint search), and dequantize. Counter `err` is the importance-weighted squared error
// relative to the weighted energy of the data, `fits` the Q3_K fits per block.
// Run: build with -DIMQ_BUILD_BENCH=ON -DCMAKE_BUILD_TYPE=Release, then ./build/q3_hifi_bench.
#include <benchmark/benchmark.h>

#include <vector>

#include "common/random_rows.h"
#include "imq/quant.h"
#include "quant/q3_hifi.h"

namespace {

using imq::quant::q3_hifi::Block;
using imq::quant::q3_hifi::kBlockSize;
using imq::quant::q3_hifi::Selection;

constexpr int64_t kRows = 16, kCols = 4096;  // 256 KiB of F32 per iteration

// Normal weights with a Student-t tail on one in 16, importance spread over e^0 .. e^4.
const imq::test::RandomRows& input() {
  static const imq::test::RandomRows in = imq::test::random_rows(
      {.seed = 1, .rows = kRows, .cols = kCols, .sigma = 0.02f, .tail_scale = 0.06f});
  return in;
}

const float* importance_of(const benchmark::State& state, int64_t block) {
  return state.range(0) ? input().importance.data() + (block * kBlockSize) % kCols : nullptr;
}

double energy(const benchmark::State& state) {
  double e = 0;
  for (int64_t i = 0; i < kRows * kCols; ++i) {
    const double w = state.range(0) ? input().importance[size_t(i % kCols)] : 1.0;
    e += w * double(input().x[size_t(i)]) * input().x[size_t(i)];
  }
  return e;
}

void BM_Q3K(benchmark::State& state) {
  const auto& c = imq::quant::codec(imq::GgmlType::Q3_K);
  std::vector<uint8_t> out(imq::quant::row_size(c, kCols) * kRows);
  const float* imp = state.range(0) ? input().importance.data() : nullptr;
  for (auto _ : state) {
    c.quantize(input().x.data(), out.data(), kRows, kCols, imp);
    benchmark::DoNotOptimize(out.data());
  }
  std::vector<float> y(input().x.size());
  c.dequantize(out.data(), y.data(), int64_t(y.size()));
  double err = 0;
  for (int64_t b = 0; b < kRows * kCols / kBlockSize; ++b)
    err += imq::quant::q3_hifi::weighted_error(input().x.data() + b * kBlockSize,
                                               y.data() + b * kBlockSize, importance_of(state, b),
                                               kBlockSize);
  state.counters["err"] = err / energy(state);
  state.SetBytesProcessed(int64_t(state.iterations()) * kRows * kCols * 4);
}

void run_q3_hifi(benchmark::State& state, Selection sel) {
  std::vector<Block> out(size_t(kRows * kCols / kBlockSize));
  double err = 0, fits = 0;
  for (auto _ : state) {
    err = fits = 0;
    for (size_t b = 0; b < out.size(); ++b) {
      const auto r = imq::quant::q3_hifi::quantize_block(
          input().x.data() + b * kBlockSize, importance_of(state, int64_t(b)), sel, out[b]);
      err += r.error;
      fits += r.fits;
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["err"] = err / energy(state);
  state.counters["fits"] = fits / double(out.size());
  state.SetBytesProcessed(int64_t(state.iterations()) * kRows * kCols * 4);
}

void BM_Q3HifiMagnitude(benchmark::State& state) { run_q3_hifi(state, Selection::kMagnitude); }
void BM_Q3HifiJoint(benchmark::State& state) { run_q3_hifi(state, Selection::kJoint); }

void BM_Q3HifiDequantize(benchmark::State& state) {
  const auto& c = imq::quant::codec(imq::GgmlType::Q3_HIFI);
  std::vector<uint8_t> q(imq::quant::row_size(c, kCols) * kRows);
  c.quantize(input().x.data(), q.data(), kRows, kCols, nullptr);
  std::vector<float> y(input().x.size());
  for (auto _ : state) {
    c.dequantize(q.data(), y.data(), int64_t(y.size()));
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * kRows * kCols * 4);
}

BENCHMARK(BM_Q3K)->ArgName("imatrix")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Q3HifiMagnitude)->ArgName("imatrix")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Q3HifiJoint)->ArgName("imatrix")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Q3HifiDequantize)->Unit(benchmark::kMillisecond);

}  // namespace
