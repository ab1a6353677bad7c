// The machine's SGEMM ceiling (OpenBLAS, 2 threads unless OPENBLAS_NUM_THREADS says otherwise)
// on the shapes of the 125M bench model's prompt processing, against imq's matmul (OpenBLAS
// single-threaded on tiles, rows split over imq's own pool) on the same shapes. Counters:
// GFLOP/s. Run: build with -DIMQ_BUILD_BENCH=ON, then ./build/sgemm_peak.
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <cstdlib>
#include <vector>

#include "common/random_rows.h"
#include "core/thread_pool.h"
#include "imq/ggml_types.h"
#include "imq/quant.h"
#include "kernels/matmul.h"

namespace {

std::vector<float> random_floats(int64_t n) { return imq::test::random_rows({1, 1, n}).x; }

// y[M, N] = x[M, K] · w[N, K]ᵀ: M tokens, N output features, K input features.
void set_flops(benchmark::State& st, int64_t m, int64_t n, int64_t k) {
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * double(m * n * k) * double(st.iterations()) / 1e9,
                                              benchmark::Counter::kIsRate);
}

void BM_OpenBlasSgemm(benchmark::State& st) {
  const int64_t m = st.range(0), n = st.range(1), k = st.range(2);
  const char* env = std::getenv("OPENBLAS_NUM_THREADS");
  openblas_set_num_threads(env ? std::atoi(env) : 2);
  const auto x = random_floats(m * k), w = random_floats(n * k);
  std::vector<float> y(size_t(m * n));
  for (auto _ : st)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(m), int(n), int(k), 1.0f, x.data(),
                int(k), w.data(), int(k), 0.0f, y.data(), int(n));
  set_flops(st, m, n, k);
}

void BM_ImqMatmulF32(benchmark::State& st) {
  const int64_t m = st.range(0), n = st.range(1), k = st.range(2);
  const auto x = random_floats(m * k), w = random_floats(n * k);
  std::vector<float> y(size_t(m * n));
  imq::ThreadPool pool(2);
  imq::kernels::MatmulContext ctx(pool, k);
  const auto v = imq::kernels::make_weight_view("w", imq::quant::codec(imq::GgmlType::F32), k,
                                                n, 1, reinterpret_cast<const uint8_t*>(w.data()));
  for (auto _ : st) imq::kernels::matmul(v, x.data(), m, y.data(), ctx);
  set_flops(st, m, n, k);
}

// attn_q/o (768x768), ffn_gate/up (768 -> 2048), ffn_down (2048 -> 768), output (768 -> 32000),
// and a square 2048^3.
void shapes(benchmark::internal::Benchmark* b) {
  b->Args({512, 768, 768})->Args({512, 2048, 768})->Args({512, 768, 2048})->Args({512, 32000, 768})
      ->Args({2048, 2048, 2048})->Unit(benchmark::kMillisecond)->UseRealTime();
}
BENCHMARK(BM_OpenBlasSgemm)->Apply(shapes);
BENCHMARK(BM_ImqMatmulF32)->Apply(shapes);

}  // namespace
