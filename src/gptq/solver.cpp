#include "gptq/solver.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "imq/error.h"
#include "quant/grid.h"

// LAPACK from OpenBLAS (Cholesky factorization, triangular inverse), column-major.
extern "C" {
void dpotrf_(const char* uplo, const int* n, double* a, const int* lda, int* info, size_t);
void dtrtri_(const char* uplo, const char* diag, const int* n, double* a, const int* lda, int* info,
             size_t, size_t);
}

namespace imq::gptq {
namespace {

// The lower Cholesky factor, column-major, of a symmetric matrix (row- or column-major: the
// same array).
bool cholesky_lower(std::vector<double>& a, int n) {
  int info = 0;
  const char lo = 'L';
  dpotrf_(&lo, &n, a.data(), &n, &info, 1);
  return info == 0;
}

// H with its diagonal damped: H_ii += damp * mean(diag H); a column no token reached gets 1
// first (it keeps its plain rounding).
void damp_in_place(std::vector<double>& a, int64_t n, double damp) {
  double mean = 0;
  for (int64_t i = 0; i < n; ++i) mean += a[size_t(i * n + i)];
  mean = mean > 0 ? mean / double(n) : 1.0;
  for (int64_t i = 0; i < n; ++i) {
    double& d = a[size_t(i * n + i)];
    if (d <= 0) d = 1;
    d += damp * mean;
  }
}

// Position p of the quantization order holds column perm[p]: f.order, or 0, 1, ... n-1.
std::vector<int64_t> positions(const std::vector<int64_t>& order, int64_t n) {
  if (!order.empty()) return order;
  std::vector<int64_t> perm(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) perm[size_t(i)] = i;
  return perm;
}

// at(i, j): the symmetric H's entry (any i, j).
template <class At>
bool factor_once(At at, int64_t n, double damp, Factor& out) {
  std::vector<double> a(size_t(n * n));
  const std::vector<int64_t> perm = positions(out.order, n);
  for (int64_t i = 0; i < n; ++i)  // H in quantization order
    for (int64_t j = 0; j < n; ++j) a[size_t(i * n + j)] = at(perm[size_t(i)], perm[size_t(j)]);
  damp_in_place(a, n, damp);
  // With J the reversal of rows and columns: J A J = L Lᵀ (lower Cholesky), and U = J L⁻¹ J
  // is upper with UᵀU = J L⁻ᵀ L⁻¹ J = A⁻¹. One factorization and one triangular inverse
  // (2n³/3 flops) instead of factoring A, inverting it and factoring the inverse (4n³/3). A
  // row-major array reversed is J A J; a symmetric row-major matrix read column-major is
  // itself, and LAPACK leaves L⁻¹ column-major in its lower triangle.
  std::reverse(a.begin(), a.end());
  const int ni = int(n);
  if (!cholesky_lower(a, ni)) return false;
  int info = 0;
  const char lo = 'L', nonunit = 'N';
  dtrtri_(&lo, &nonunit, &ni, a.data(), &ni, &info, 1, 1);
  if (info != 0) return false;
  out.n = n;
  out.u.assign(size_t(n * n), 0.0f);
  for (int64_t i = 0; i < n; ++i)  // U_ij = (L⁻¹)_{n-1-i, n-1-j}, column-major
    for (int64_t j = i; j < n; ++j) out.u[size_t(i * n + j)] = float(a[size_t((n - 1 - i) + (n - 1 - j) * n)]);
  out.damp = damp;
  return true;
}

template <class At>
bool factor_retrying(At at, int64_t n, double damp, Factor& out) {
  for (int attempt = 0; attempt < 4; ++attempt, damp *= 10)
    if (factor_once(at, n, damp, out)) return true;
  return false;
}

}  // namespace

bool factor_hessian(const std::vector<double>& h, int64_t n, double damp, Factor& out) {
  if (int64_t(h.size()) != n * n) throw_error("hessian: {} values for a {}x{} matrix", h.size(), n, n);
  return factor_retrying([&](int64_t i, int64_t j) { return h[size_t(i * n + j)]; }, n, damp, out);
}

bool factor_hessian(const Hessian& h, double damp, Factor& out) {
  const int64_t n = h.n;
  const float* u = h.h.data();  // the upper triangle
  return factor_retrying(
      [&](int64_t i, int64_t j) { return double(i <= j ? u[i * n + j] : u[j * n + i]); }, n, damp, out);
}

std::vector<float> times(const float* w, const std::vector<float>& g, int64_t rows, int64_t n,
                         ThreadPool& pool) {
  if (int64_t(g.size()) != n * n) throw_error("times: G is not {}x{}", n, n);
  std::vector<float> m(size_t(rows * n));
  const int64_t tiles = (rows + kTileRows - 1) / kTileRows;
  pool.parallel_for(size_t(tiles), [&](size_t t0, size_t t1, int) {
    for (size_t t = t0; t < t1; ++t) {
      const int64_t r0 = int64_t(t) * kTileRows, nr = std::min(kTileRows, rows - r0);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(nr), int(n), int(n), 1.0f,
                  w + r0 * n, int(n), g.data(), int(n), 0.0f, m.data() + r0 * n, int(n));
    }
  });
  return m;
}

void correct_toward(const Factor& f, std::vector<float> m, float* w, int64_t rows, ThreadPool& pool) {
  const int64_t n = f.n;
  if (int64_t(m.size()) != rows * n) throw_error("correct_toward: {} values for {}x{}", m.size(), rows, n);
  // (H + λI)⁻¹ = Pᵀ UᵀU P with P the quantization order: the columns of M in that order, times
  // Uᵀ and U (two triangular products), then back in place. Fixed tiles of rows: the bits do
  // not depend on the thread count.
  // The products in double: in float, Q2_K layers-only KLD moved by -3 % to +5 % on the three
  // shared models (within its ±, more often up), for half the time of this step.
  const int64_t tiles = (rows + kTileRows - 1) / kTileRows;
  const std::vector<double> u(f.u.begin(), f.u.end());
  const std::vector<int64_t> perm = positions(f.order, n);
  pool.parallel_for(size_t(tiles), [&](size_t t0, size_t t1, int) {
    std::vector<double> b(size_t(kTileRows * n));
    for (size_t t = t0; t < t1; ++t) {
      const int64_t r0 = int64_t(t) * kTileRows, nr = std::min(kTileRows, rows - r0);
      const float* mr = m.data() + r0 * n;
      for (int64_t r = 0; r < nr; ++r)
        for (int64_t p = 0; p < n; ++p)
          b[size_t(r * n + p)] = mr[r * n + perm[size_t(p)]];
      cblas_dtrmm(CblasRowMajor, CblasRight, CblasUpper, CblasTrans, CblasNonUnit, int(nr), int(n),
                  1.0, u.data(), int(n), b.data(), int(n));
      cblas_dtrmm(CblasRowMajor, CblasRight, CblasUpper, CblasNoTrans, CblasNonUnit, int(nr), int(n),
                  1.0, u.data(), int(n), b.data(), int(n));
      float* wr = w + r0 * n;
      for (int64_t r = 0; r < nr; ++r)
        for (int64_t p = 0; p < n; ++p)
          wr[r * n + perm[size_t(p)]] += float(b[size_t(r * n + p)]);
    }
  });
}

std::vector<int64_t> importance_order(const std::vector<double>& diag_h, int64_t bs, int64_t gs) {
  const auto n = int64_t(diag_h.size());
  if (bs <= 0 || n % bs != 0) throw_error("importance_order: {} columns in blocks of {}", n, bs);
  if (gs <= 0 || bs % gs != 0) throw_error("importance_order: blocks of {} in groups of {}", bs, gs);
  // diag(c): the sum of diag H over the group that starts at column c.
  auto diag = [&](int64_t c) {
    double s = 0;
    for (int64_t k = 0; k < gs; ++k) s += diag_h[size_t(c + k)];
    return s;
  };
  std::vector<int64_t> blocks(size_t(n / bs));
  std::vector<double> block_sum(blocks.size(), 0.0);
  for (int64_t b = 0; b < n / bs; ++b) {
    blocks[size_t(b)] = b;
    for (int64_t k = 0; k < bs; ++k) block_sum[size_t(b)] += diag_h[size_t(b * bs + k)];
  }
  std::stable_sort(blocks.begin(), blocks.end(),
                   [&](int64_t a, int64_t b) { return block_sum[size_t(a)] > block_sum[size_t(b)]; });
  std::vector<int64_t> order;
  order.reserve(size_t(n));
  std::vector<int64_t> firsts;
  for (int64_t b : blocks) {
    firsts.clear();
    for (int64_t k = 0; k < bs; k += gs) firsts.push_back(b * bs + k);
    std::stable_sort(firsts.begin(), firsts.end(), [&](int64_t x, int64_t y) { return diag(x) > diag(y); });
    for (int64_t c : firsts)
      for (int64_t k = 0; k < gs; ++k) order.push_back(c + k);
  }
  return order;
}

void quantize_rows(const quant::Codec& codec, int variants, const Factor& f, const float* importance,
                   float* w, int64_t rows, uint8_t* dst, ThreadPool& pool) {
  const quant::GridOps* ops = codec.grid;
  if (!ops) throw_error("type {} has no block grid for error-compensated quantization", codec.name);
  const int64_t n = f.n, bs = codec.block_size;
  if (n % bs != 0) throw_error("row length {} is not a multiple of {}'s block size {}", n, codec.name, bs);
  if (bs > quant::BlockGrid::kMax) throw_error("{}: blocks of {} are too long", codec.name, bs);
  // Position p of the quantization order holds column perm[p]; every block's columns must be
  // consecutive positions.
  const std::vector<int64_t> perm = positions(f.order, n);
  if (int64_t(perm.size()) != n) throw_error("quantize_rows: an order of {} columns for {}", perm.size(), n);
  for (int64_t p = 0; p < n; p += bs)
    for (int64_t k = 1; k < bs; ++k)
      if (perm[size_t(p + k)] / bs != perm[size_t(p)] / bs)
        throw_error("quantize_rows: the column order splits block {}", perm[size_t(p)] / bs);
  const int64_t gs = ops->group;  // a jointly coded group's columns: consecutive and in order
  if (gs < 1 || bs % gs != 0 || (gs > 1 && !ops->round_group))
    throw_error("{}: groups of {} in blocks of {}", codec.name, gs, bs);
  for (int64_t p = 0; p < n; p += gs)
    for (int64_t k = 0; k < gs; ++k)
      if (perm[size_t(p + k)] != perm[size_t(p)] + k || perm[size_t(p)] % gs != 0)
        throw_error("quantize_rows: the column order splits {}'s group at column {}", codec.name,
                    perm[size_t(p)]);
  variants = std::clamp(variants, 1, ops->n_variants);
  // Positions per lazy batch: whole blocks, at least 128.
  const int64_t batch = std::max<int64_t>(bs, (128 / bs) * bs);
  const size_t row_bytes = quant::row_size(codec, n);
  const float* u = f.u.data();
  const int64_t n_tiles = (rows + kTileRows - 1) / kTileRows;
  pool.parallel_for(size_t(n_tiles), [&](size_t t0, size_t t1, int) {
    quant::BlockGrid g;
    const auto nb = static_cast<size_t>(bs);
    std::vector<float> err(static_cast<size_t>(kTileRows * batch)), vals(nb), e(nb), best_vals(nb),
        best_e(nb), x(nb), imp(nb), dec(nb), gw(nb), wt(static_cast<size_t>(kTileRows * n));
    std::vector<uint8_t> cand(codec.type_size), best(codec.type_size);
    for (size_t tile = t0; tile < t1; ++tile) {
      const int64_t r0 = int64_t(tile) * kTileRows, nr = std::min(kTileRows, rows - r0);
      for (int64_t r = 0; r < nr; ++r)  // the tile in quantization order
        for (int64_t p = 0; p < n; ++p) wt[size_t(r * n + p)] = w[(r0 + r) * n + perm[size_t(p)]];
      uint8_t* out = dst + size_t(r0) * row_bytes;
      for (int64_t b0 = 0; b0 < n; b0 += batch) {
        const int64_t b1 = std::min(n, b0 + batch);
        for (int64_t r = 0; r < nr; ++r) {
          float* wr = wt.data() + r * n;
          for (int64_t i0 = b0; i0 < b1; i0 += bs) {
            const int64_t blk = perm[size_t(i0)] / bs;
            // The block's values and importance in the block's own element order.
            for (int64_t p = i0; p < i0 + bs; ++p) {
              const int64_t k = perm[size_t(p)] % bs;
              x[size_t(k)] = wr[p];
              if (importance) imp[size_t(k)] = importance[perm[size_t(p)]];
            }
            // Each parameter set: round the block's elements in order with feedback inside
            // the block; its cost is the sum of (rounding error / U_pp)^2, the rise of the
            // layer's output error with the later columns compensating.
            double best_loss = INFINITY;
            for (int v = 0; v < variants; ++v) {
              ops->fit(x.data(), importance ? imp.data() : nullptr, v, cand.data(), g);
              std::copy(wr + i0, wr + i0 + bs, vals.begin());
              double loss = 0;
              for (int64_t j = 0; j < bs; ++j) {
                const int64_t p = i0 + j;
                const int k = int(perm[size_t(p)] % bs);
                float val;
                if (gs == 1) {
                  const int q = g.nearest(k, vals[size_t(j)]);
                  g.q[k] = int8_t(q);
                  val = g.value(k, q);
                } else {
                  // A group's codes are chosen together when its first column comes, for the
                  // values it has then, each error weighed by 1 / U_pp^2 (the diagonal of the
                  // rise of the output error; the codecs' searches are diagonal). Its columns
                  // then take their errors one after the other as single columns do: the
                  // feedback of the group's earlier columns no longer changes the later ones'
                  // codes, but it is part of their errors e: with d = w - q the loss is
                  // dᵀHd = |U⁻ᵀd|² and (U⁻ᵀd)_p is exactly the sequential e_p for any q, so
                  // the errors pushed onward (and the loss of the variant) stay exact.
                  if (j % gs == 0) {
                    for (int64_t t = 0; t < gs; ++t) {
                      const float upp = u[(p + t) * n + p + t];
                      gw[size_t(t)] = 1 / (upp * upp);
                    }
                    ops->round_group(k, vals.data() + j, gw.data(), cand.data());
                    codec.dequantize(cand.data(), dec.data(), bs);
                  }
                  val = dec[size_t(k)];
                }
                const float ej = (vals[size_t(j)] - val) / u[p * n + p];
                vals[size_t(j)] = val;
                e[size_t(j)] = ej;
                loss += double(ej) * ej;
                const float* up = u + p * n + i0;
                for (int64_t m = j + 1; m < bs; ++m) vals[size_t(m)] -= ej * up[m];
              }
              if (loss < best_loss) {
                best_loss = loss;
                if (gs == 1) ops->store(g, cand.data());
                best.swap(cand);
                best_vals.swap(vals);
                best_e.swap(e);
              }
            }
            std::memcpy(out + size_t(r) * row_bytes + size_t(blk) * codec.type_size, best.data(),
                        best.size());
            std::copy(best_vals.begin(), best_vals.end(), wr + i0);
            std::copy(best_e.begin(), best_e.end(), err.begin() + r * batch + (i0 - b0));
            // The block's errors onto the rest of the batch (the rest of the row: below).
            for (int64_t j = 0; j < bs; ++j) {
              const float ej = best_e[size_t(j)];
              const float* up = u + (i0 + j) * n;
              for (int64_t m = i0 + bs; m < b1; ++m) wr[m] -= ej * up[m];
            }
          }
        }
        if (b1 < n)
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(nr), int(n - b1), int(b1 - b0),
                      -1.0f, err.data(), int(batch), u + b0 * n + b1, int(n), 1.0f,
                      wt.data() + b1, int(n));
      }
      for (int64_t r = 0; r < nr; ++r)
        for (int64_t p = 0; p < n; ++p) w[(r0 + r) * n + perm[size_t(p)]] = wt[size_t(r * n + p)];
    }
  });
}

}  // namespace imq::gptq
