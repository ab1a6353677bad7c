// The seam between the runner and the codecs: how rows of one matrix become blocks. The
// reference search is llama.cpp's (the codec registry's quantize); a better search can be
// added beside it and picked with --search without touching the runner.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

#include "imq/quantize.h"

namespace imq::quantize {

class RowQuantizer {
 public:
  virtual ~RowQuantizer() = default;
  // Throws imq::Error when `type` cannot be produced (checked before any work starts).
  virtual void require(GgmlType type) const = 0;
  // Quantizes nrows rows of n_per_row floats to `type` into dst; importance (n_per_row
  // weights shared by every row) may be null. Returns bytes written. Thread-safe.
  virtual size_t quantize(GgmlType type, const float* src, void* dst, int64_t nrows,
                          int64_t n_per_row, const float* importance) const = 0;
};

// rule: how Q3_HIFI tensors choose their outliers (the codec's own quantize is kSaving).
std::unique_ptr<RowQuantizer> make_row_quantizer(Search search,
                                                 Q3HifiOutliers rule = Q3HifiOutliers::kSaving);

}  // namespace imq::quantize
