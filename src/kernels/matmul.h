// The one matrix-multiplication entry point of the forward pass: y = x·Wᵀ for a weight of
// any type with a codec. Batches of >= kGemmMinRows activation rows go through OpenBLAS
// SGEMM on float tiles of W (F32 rows are used in place, other types are dequantized tile by
// tile into per-thread scratch); fewer rows use the SIMD dot kernels row by row. The rows of
// W are split among the threads of the context's pool; OpenBLAS itself runs single-threaded.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "core/thread_pool.h"
#include "imq/quant.h"
#include "kernels/type_kernels.h"

namespace imq::kernels {

// A weight in ggml's layout: ne2 matrices (experts) of ne1 rows of ne0 elements of `type`,
// rows contiguous. Non-owning: points into the mapped model file.
struct WeightView {
  std::string_view name;  // GGUF tensor name
  GgmlType type = GgmlType::F32;
  int64_t ne0 = 0;        // columns = input features
  int64_t ne1 = 0;        // rows = output features
  int64_t ne2 = 1;        // experts (1 for a 2-D weight)
  const uint8_t* data = nullptr;
  size_t row_bytes = 0;
  const quant::Codec* codec = nullptr;  // never null for a valid view
  const TypeKernels* kernels = nullptr;  // type_kernels(*codec), never null for a valid view

  const uint8_t* row(int64_t r) const { return data + size_t(r) * row_bytes; }
  // The 2-D matrix of expert e (e < ne2).
  WeightView expert(int64_t e) const {
    WeightView v = *this;
    v.data = data + size_t(e) * size_t(ne1) * row_bytes;
    v.ne2 = 1;
    return v;
  }
};

// A view over `data` (ne2 matrices of ne1 rows of ne0 values of the codec's type), with its
// kernels looked up once.
WeightView make_weight_view(std::string_view name, const quant::Codec& codec, int64_t ne0,
                            int64_t ne1, int64_t ne2, const uint8_t* data);

// Rows [r0, r1) of a 2-D weight as floats: dst [(r1-r0), ne0].
void dequantize_rows(const WeightView& w, int64_t r0, int64_t r1, float* dst);

// Threads and per-thread scratch for matmul, allocated once (at session setup).
class MatmulContext {
 public:
  // max_ne0: the longest weight row (input features) that will be multiplied.
  // Sets OpenBLAS to one thread (the pool splits the work; concurrent SGEMM calls must not
  // spawn threads of their own); the destructor restores the count it found, so a program
  // using imq keeps its BLAS setting once its sessions are gone.
  MatmulContext(ThreadPool& pool, int64_t max_ne0);
  ~MatmulContext();
  MatmulContext(const MatmulContext&) = delete;
  MatmulContext& operator=(const MatmulContext&) = delete;

  ThreadPool& pool() const { return pool_; }
  int64_t max_ne0() const { return max_ne0_; }
  // Rows per dequantized tile for a given row length.
  int64_t tile_rows(int64_t ne0) const;
  float* scratch(int thread) { return scratch_[size_t(thread)].data(); }

 private:
  ThreadPool& pool_;
  int64_t max_ne0_;
  std::vector<std::vector<float>> scratch_;  // per thread: kTileFloats
  int blas_threads_before_;
};

inline constexpr int64_t kGemmMinRows = 16;

// y[t, r] = Σ_j W[r, j] · x[t, j] for t < n. x: [n, ne0], y: [n, ne1], row-major, contiguous.
// W must be 2-D (use WeightView::expert for one expert of a 3-D weight).
void matmul(const WeightView& w, const float* x, int64_t n, float* y, MatmulContext& ctx);

// The scalar reference of matmul (double accumulation), for tests.
void matmul_ref(const WeightView& w, const float* x, int64_t n, float* y);

}  // namespace imq::kernels
