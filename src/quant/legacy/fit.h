// The block fits and the row loop shared by Q4_0, Q4_1, Q5_0 and Q5_1 (spec g.3, g.6): each
// codec file keeps its layout, packing and decoding, and fits its blocks with these.
#pragma once
#include <cstddef>
#include <cstdint>

#include "quant/block_io.h"
#include "quant/legacy/search.h"

namespace imq::quant {

// Without importance, symmetric (x ~ d * (q - nhalf)): d = -(the value of largest magnitude) /
// nhalf, q = min(2 * nhalf - 1, trunc(x / d + nhalf + 0.5)). Writes n codes, returns d.
float plain_sym_fit(const float* x, int n, int nhalf, uint8_t* q);

// Without importance, asymmetric (x ~ d * q + min): d = (max - min) / qmax,
// q = min(qmax, trunc((x - min) / d + 0.5)). Writes n codes and *min, returns d.
float plain_asym_fit(const float* x, int n, int qmax, uint8_t* q, float* min);

// With importance qw (one weight per value of the block) and the row's sigma2: weights
// qw * sqrt(sigma2 + x^2), then SYM with nmax = nhalf, or ASYM-IM with ggml's legacy grid.
float importance_sym_fit(const float* x, const float* qw, float sigma2, int n, int nhalf, uint8_t* q);
float importance_asym_fit(const float* x, const float* qw, float sigma2, int n, int qmax, uint8_t* q,
                          float* min);

// Quantizes nrows rows of n_per_row floats into consecutive blocks of QK values:
// fit(x, qw, sigma2) -> Block, where qw points at the block's importance (null without it)
// and sigma2 is the row's mean square (0 without importance). Returns the bytes written.
template <class Block, int QK, class Fit>
size_t quantize_rows(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                     const float* importance, Fit fit) {
  const int64_t nb = n_per_row / QK;
  for (int64_t r = 0; r < nrows; ++r) {
    const float* x = src + r * n_per_row;
    const float sigma2 = importance ? row_sigma2(x, n_per_row) : 0.0f;
    for (int64_t i = 0; i < nb; ++i)
      store_block(dst, r * nb + i, fit(x + i * QK, importance ? importance + i * QK : nullptr, sigma2));
  }
  return size_t(nrows * nb) * sizeof(Block);
}

}  // namespace imq::quant
