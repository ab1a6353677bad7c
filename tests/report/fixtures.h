// A small hand-made importance matrix covering what the report must show: dense tensors over
// three blocks, MoE expert tensors with one expert that saw no tokens, a NaN, an entry whose
// count is 0, a non-block tensor and one wide tensor (2000 columns) with a planted outlier.
#pragma once
#include <cmath>

#include "imq/imatrix.h"

namespace imq::test {

constexpr int kWideOutlierCol = 1234;
constexpr float kWideOutlierValue = 5000.0f;  // importance (sum / count) of that column

inline imatrix::Entry dense_entry(size_t n, float count, float scale, int seed) {
  imatrix::Entry e;
  e.counts = {count};
  for (size_t j = 0; j < n; ++j)
    e.sums.push_back(count * scale * (1.0f + 0.5f * std::sin(0.7f * (j + 1) * (seed + 1))));
  return e;
}

inline imatrix::Imatrix small_imatrix() {
  imatrix::Imatrix m;
  m.datasets = {"calib-small.txt"};
  m.chunk_count = 3;
  m.chunk_size = 64;
  const float tokens = 192;
  for (int l = 0; l < 3; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    m.entries[b + "attn_q.weight"] = dense_entry(8, tokens, 1.0f + l, l);
    m.entries[b + "ffn_gate_inp.weight"] = dense_entry(8, tokens, 0.5f, l + 7);
    imatrix::Entry ex;  // 4 experts x 8 columns; layer 1's expert 2 saw no tokens
    for (int k = 0; k < 4; ++k) {
      float c = (l == 1 && k == 2) ? 0.0f : 10.0f * (k + 1) + l;
      ex.counts.push_back(c);
      for (int j = 0; j < 8; ++j) ex.sums.push_back(c * (0.1f + 0.01f * j * (k + 1)));
    }
    m.entries[b + "ffn_up_exps.weight"] = ex;
  }
  m.entries["blk.2.attn_q.weight"].sums[3] = NAN;
  // Wide tensor with one outlier column.
  imatrix::Entry wide = dense_entry(2000, tokens, 0.01f, 3);
  wide.sums[kWideOutlierCol] = kWideOutlierValue * tokens;
  m.entries["blk.0.ffn_down.weight"] = wide;
  m.entries["output.weight"] = imatrix::Entry{std::vector<float>(8, 0.0f), {0.0f}};
  return m;
}

}  // namespace imq::test
