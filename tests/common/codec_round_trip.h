// Round trip of a codec over whole rows, and the row of a per-type error-bound table, for the
// round-trip tests of every codec family. Header-only; tests/common has no .cpp, so no test
// target.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <ostream>
#include <vector>

#include "imq/ggml_types.h"
#include "imq/quant.h"

namespace imq::test {

// Error bounds of one type on random rows: nrmse = sqrt(sum (x - y)^2 / sum x^2); max_err =
// largest |x - y| / max|x| of its block (the table's comment says which block and data).
struct Bound {
  GgmlType type;
  double nrmse;
  double max_err;
  bool uses_importance;  // llama-quantize's result depends on the imatrix
};

inline void PrintTo(const Bound& b, std::ostream* os) { *os << ggml_type_display_name(b.type); }

struct RoundTrip {
  std::vector<uint8_t> bytes;
  std::vector<float> y;
};

// Quantizes x (rows x cols) with c into a buffer filled with 0xa5 (bytes left unwritten show),
// expects the whole buffer written, and dequantizes it into y.
inline RoundTrip round_trip(const quant::Codec& c, const std::vector<float>& x, int64_t rows, int64_t cols,
                            const float* importance) {
  RoundTrip r;
  r.bytes.assign(quant::row_size(c, cols) * size_t(rows), 0xa5);
  EXPECT_EQ(c.quantize(x.data(), r.bytes.data(), rows, cols, importance), r.bytes.size());
  r.y.resize(x.size());
  c.dequantize(r.bytes.data(), r.y.data(), rows * cols);
  return r;
}

}  // namespace imq::test
