#include "gptq/solver.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
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

void quantize_rows(const quant::Codec& codec, int variants, const Factor& f, const float* importance,
                   float* w, int64_t rows, uint8_t* dst, ThreadPool& pool) {
  const quant::GridOps* ops = codec.grid;
  if (!ops) throw_error("type {} has no block grid for error-compensated quantization", codec.name);
  const int64_t n = f.n, bs = codec.block_size;
  if (n % bs != 0) throw_error("row length {} is not a multiple of {}'s block size {}", n, codec.name, bs);
  if (bs > quant::BlockGrid::kMax) throw_error("{}: blocks of {} are too long", codec.name, bs);
  variants = std::clamp(variants, 1, ops->n_variants);
  // Columns per lazy batch: whole blocks, at least 128.
  const int64_t batch = std::max<int64_t>(bs, (128 / bs) * bs);
  const size_t row_bytes = quant::row_size(codec, n);
  const float* u = f.u.data();
  const int64_t n_tiles = (rows + kTileRows - 1) / kTileRows;
  pool.parallel_for(size_t(n_tiles), [&](size_t t0, size_t t1, int) {
    quant::BlockGrid g;
    const auto nb = static_cast<size_t>(bs);
    std::vector<float> err(static_cast<size_t>(kTileRows * batch)), vals(nb), e(nb), best_vals(nb),
        best_e(nb);
    std::vector<uint8_t> cand(codec.type_size), best(codec.type_size);
    for (size_t tile = t0; tile < t1; ++tile) {
      const int64_t r0 = int64_t(tile) * kTileRows, nr = std::min(kTileRows, rows - r0);
      float* wt = w + r0 * n;
      uint8_t* out = dst + size_t(r0) * row_bytes;
      for (int64_t b0 = 0; b0 < n; b0 += batch) {
        const int64_t b1 = std::min(n, b0 + batch);
        for (int64_t r = 0; r < nr; ++r) {
          float* wr = wt + r * n;
          for (int64_t i0 = b0; i0 < b1; i0 += bs) {
            // Each parameter set: round the block's elements in order with feedback inside
            // the block; its cost is the sum of (rounding error / U_ii)^2, the rise of the
            // layer's output error with the later columns compensating.
            double best_loss = INFINITY;
            for (int v = 0; v < variants; ++v) {
              ops->fit(wr + i0, importance ? importance + i0 : nullptr, v, cand.data(), g);
              std::copy(wr + i0, wr + i0 + bs, vals.begin());
              double loss = 0;
              for (int64_t k = 0; k < bs; ++k) {
                const int64_t i = i0 + k;
                const int q = g.nearest(int(k), vals[size_t(k)]);
                g.q[k] = int8_t(q);
                const float val = g.value(int(k), q);
                const float ek = (vals[size_t(k)] - val) / u[i * n + i];
                vals[size_t(k)] = val;
                e[size_t(k)] = ek;
                loss += double(ek) * ek;
                const float* ui = u + i * n + i0;
                for (int64_t j = k + 1; j < bs; ++j) vals[size_t(j)] -= ek * ui[j];
              }
              if (loss < best_loss) {
                best_loss = loss;
                ops->store(g, cand.data());
                best.swap(cand);
                best_vals.swap(vals);
                best_e.swap(e);
              }
            }
            std::memcpy(out + size_t(r) * row_bytes + size_t(i0 / bs) * codec.type_size,
                        best.data(), best.size());
            std::copy(best_vals.begin(), best_vals.end(), wr + i0);
            std::copy(best_e.begin(), best_e.end(), err.begin() + r * batch + (i0 - b0));
            // The block's errors onto the rest of the batch (the rest of the row: below).
            for (int64_t k = 0; k < bs; ++k) {
              const float ek = best_e[size_t(k)];
              const float* ui = u + (i0 + k) * n;
              for (int64_t j = i0 + bs; j < b1; ++j) wr[j] -= ek * ui[j];
            }
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
