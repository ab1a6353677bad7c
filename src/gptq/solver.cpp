#include "gptq/solver.h"

#include <cblas.h>

#include <algorithm>
#include <cstring>

#include "imq/error.h"
#include "quant/grid.h"

// LAPACK from OpenBLAS (Cholesky factorization and inverse), column-major.
extern "C" {
void dpotrf_(const char* uplo, const int* n, double* a, const int* lda, int* info, size_t);
void dpotri_(const char* uplo, const int* n, double* a, const int* lda, int* info, size_t);
}

namespace imq::gptq {
namespace {

// A row-major symmetric matrix read as column-major is itself; LAPACK's 'L' on it works on
// the row-major upper triangle.
bool cholesky_upper(std::vector<double>& a, int n) {
  int info = 0;
  const char lo = 'L';
  dpotrf_(&lo, &n, a.data(), &n, &info, 1);
  return info == 0;
}

bool factor_once(const std::vector<double>& h, int64_t n, double damp, Factor& out) {
  std::vector<double> a = h;
  double mean = 0;
  for (int64_t i = 0; i < n; ++i) mean += a[size_t(i * n + i)];
  mean = mean > 0 ? mean / double(n) : 1.0;
  for (int64_t i = 0; i < n; ++i) {
    double& d = a[size_t(i * n + i)];
    if (d <= 0) d = 1;  // a column no token reached: keeps its plain rounding
    d += damp * mean;
  }
  const int ni = int(n);
  if (!cholesky_upper(a, ni)) return false;
  int info = 0;
  const char lo = 'L';
  dpotri_(&lo, &ni, a.data(), &ni, &info, 1);  // H⁻¹ in the row-major upper triangle
  if (info != 0) return false;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < i; ++j) a[size_t(i * n + j)] = a[size_t(j * n + i)];
  if (!cholesky_upper(a, ni)) return false;
  out.n = n;
  out.u.assign(size_t(n * n), 0.0f);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i; j < n; ++j) out.u[size_t(i * n + j)] = float(a[size_t(i * n + j)]);
  out.damp = damp;
  return true;
}

}  // namespace

bool factor_hessian(std::vector<double> h, int64_t n, double damp, Factor& out) {
  if (int64_t(h.size()) != n * n) throw_error("hessian: {} values for a {}x{} matrix", h.size(), n, n);
  for (int attempt = 0; attempt < 4; ++attempt, damp *= 10)
    if (factor_once(h, n, damp, out)) return true;
  return false;
}

void quantize_rows(const quant::Codec& codec, bool imq, const Factor& f, const float* importance,
                   float* w, int64_t rows, uint8_t* dst, ThreadPool& pool) {
  const quant::GridOps* ops = codec.grid;
  if (!ops) throw_error("type {} has no block grid for error-compensated quantization", codec.name);
  const int64_t n = f.n, bs = codec.block_size;
  if (n % bs != 0) throw_error("row length {} is not a multiple of {}'s block size {}", n, codec.name, bs);
  // Columns per lazy batch: whole blocks, at least 128.
  const int64_t batch = std::max<int64_t>(bs, (128 / bs) * bs);
  const size_t row_bytes = quant::row_size(codec, n);
  const float* u = f.u.data();
  const int64_t n_tiles = (rows + kTileRows - 1) / kTileRows;
  pool.parallel_for(size_t(n_tiles), [&](size_t t0, size_t t1, int) {
    std::vector<quant::BlockGrid> grids{size_t(kTileRows)};
    std::vector<float> err(size_t(kTileRows * batch));
    for (size_t tile = t0; tile < t1; ++tile) {
      const int64_t r0 = int64_t(tile) * kTileRows, nr = std::min(kTileRows, rows - r0);
      float* wt = w + r0 * n;
      uint8_t* out = dst + size_t(r0) * row_bytes;
      for (int64_t b0 = 0; b0 < n; b0 += batch) {
        const int64_t b1 = std::min(n, b0 + batch);
        for (int64_t i = b0; i < b1; ++i) {
          const int64_t k = i % bs;
          const float inv_d = 1.0f / u[i * n + i];
          const float* ui = u + i * n;
          for (int64_t r = 0; r < nr; ++r) {
            float* wr = wt + r * n;
            quant::BlockGrid& g = grids[size_t(r)];
            void* block = out + size_t(r) * row_bytes + size_t(i / bs) * codec.type_size;
            if (k == 0) ops->fit(wr + i, importance ? importance + i : nullptr, imq, block, g);
            const int q = g.nearest(int(k), wr[i]);
            g.q[k] = int8_t(q);
            const float e = (wr[i] - g.value(int(k), q)) * inv_d;
            wr[i] = g.value(int(k), q);
            err[size_t(r * batch + (i - b0))] = e;
            for (int64_t j = i + 1; j < b1; ++j) wr[j] -= e * ui[j];
            if (k == bs - 1) ops->store(g, block);
          }
        }
        if (b1 < n)
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(nr), int(n - b1), int(b1 - b0),
                      -1.0f, err.data(), int(batch), u + b0 * n + b1, int(n), 1.0f, wt + b1, int(n));
      }
    }
  });
}

}  // namespace imq::gptq
