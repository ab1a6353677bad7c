// The GPTQ/OBQ step of error-compensated quantization, for one weight matrix W [rows, n] whose
// inputs x have the second-moment matrix H = sum x xᵀ (hessian.h):
//   1. damp H (H_ii += damp * mean(diag H); a column no token reached gets H_ii = 1), and take
//      U, the upper Cholesky factor of H⁻¹ (H⁻¹ = UᵀU);
//   2. per row, columns in order: when a column starts a block, fit the block's parameters to
//      the row's current values (quant/grid.h); round the column to the nearest grid value,
//      and push its error e onto the columns after it: w_j -= e / U_ii * U_ij (j > i).
//      The lattice i-quants choose a group's codes together when its first column comes
//      (GridOps::group, round_group); its columns then push their errors as single ones do.
//      A block tries each of its type's candidate parameter sets this way and keeps the one
//      with the least sum of (e / U_ii)^2, the rise of the output error it causes.
// The updates of columns beyond the current batch of columns are deferred and applied with one
// GEMM per batch ("lazy batches"); batches hold whole blocks, so a block is always fitted to
// fully updated values. Rows go in fixed tiles of kTileRows, so the bytes do not depend on the
// thread count.
#pragma once
#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "gptq/hessian.h"
#include "imq/quant.h"

namespace imq::gptq {

inline constexpr int64_t kTileRows = 32;

struct Factor {
  int64_t n = 0;
  // The quantization order: position p holds column order[p] (empty: 0, 1, ...). Set it before
  // factor_hessian; U is then the factor of H with rows and columns in this order.
  std::vector<int64_t> order;
  std::vector<float> u;  // [n, n] row-major, upper triangle: H⁻¹ = UᵀU
  double damp = 0;       // the damping that made H positive definite (fraction of mean diag)
};

// "Act order" within the block constraint: blocks by their sum of diag(H), most important
// first, and inside each block its columns likewise (a block's columns stay together, so its
// parameters can still be fitted to all of them before the first is rounded). The errors of
// the columns that matter most are then spread over those that matter less. With group > 1
// (quant::GridOps::group) the groups of a block are ordered by their sums instead, each
// group's columns together and in their own order, as jointly coded groups need.
std::vector<int64_t> importance_order(const std::vector<double>& diag_h, int64_t block,
                                      int64_t group = 1);

// Damps H by `damp` times its mean diagonal and factors it. When the damped H is not positive
// definite the damping is raised tenfold up to three times; returns false when even that fails
// (the caller falls back to plain rounding). H: [n, n] row-major and symmetric, or as
// accumulated (the float upper triangle: no double copy of it besides the working one).
bool factor_hessian(const std::vector<double>& h, int64_t n, double damp, Factor& out);
bool factor_hessian(const Hessian& h, double damp, Factor& out);

// The target that makes the layer correct the error of the layers before it: with H = X̃ᵀX̃
// (inputs after the quantized layers) and G = (X − X̃)ᵀX̃ (X: the full-precision inputs of the
// same tokens), W* = W + W G (H + λI)⁻¹ minimizes ‖X̃W*ᵀ − XWᵀ‖² (λ: f.damp's damping), so
// that quantizing W* with H minimizes the distance to the full-precision outputs.
// correct_toward: w [rows, n] += m (H + λI)⁻¹ for m = W G, with f's factor (f.u, f.order).
// times: W G for w [rows, n] and G [n, n] (or accumulate W G directly: hessian.h).
void correct_toward(const Factor& f, std::vector<float> m, float* w, int64_t rows, ThreadPool& pool);
std::vector<float> times(const float* w, const std::vector<float>& g, int64_t rows, int64_t n,
                         ThreadPool& pool);

// Quantizes rows [rows, n] of W (modified: on return it holds the rounded values) to the
// codec's type into dst (rows * row_size bytes). importance: n weights for the block fits (the
// imatrix slice, or diag(H) / tokens), or null. variants: how many of the type's candidate
// parameter sets each block tries (quant::GridOps; 1: the codec's reference search only).
void quantize_rows(const quant::Codec& codec, int variants, const Factor& f, const float* importance,
                   float* w, int64_t rows, uint8_t* dst, ThreadPool& pool);

}  // namespace imq::gptq
