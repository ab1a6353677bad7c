// Shared helpers of the imatrix tests: the four reference imatrices and file comparison.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "imq/imatrix.h"
#include "test_util.h"

namespace imq::test {

struct RefImatrix {
  const char* model;  // folder under reference/
  uint32_t chunk_size;
  bool moe;
  int n_chunks;  // --chunks of the reference collection (README)
  std::string base() const {
    return std::string("reference/") + model + "/imatrix-calib-c" + std::to_string(chunk_size);
  }
};

inline const std::vector<RefImatrix>& ref_imatrices() {
  static const std::vector<RefImatrix> v = {
      {"stories260K", 128, false, 8}, {"dense-spm4k", 256, false, 8}, {"moe-gpt2bpe", 256, true, 8},
      {"codec256", 128, false, 4}};
  return v;
}

// The other architectures' collections (no legacy .dat or merged files beside them): their
// statistics are compared; imq's own collection is not (its chunk perplexities are 0.15-0.26 %
// off the AVX512-BF16 build's, DESIGN.md "Agreeing with llama.cpp's numbers").
inline const std::vector<RefImatrix>& arch_imatrices() {
  static const std::vector<RefImatrix> v = {{"archs/qwen2", 256, false, 8},
                                            {"archs/qwen3", 256, false, 8},
                                            {"archs/qwen3moe", 256, true, 8},
                                            {"archs/gemma3", 256, false, 8}};
  return v;
}

// Test name of a reference imatrix (INSTANTIATE_TEST_SUITE_P): its model.
inline std::string ref_imatrix_name(const ::testing::TestParamInfo<RefImatrix>& info) {
  return gtest_name(info.param.model);
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f << bytes;
}

// Index of the first differing byte, or -1 when equal (sizes included).
inline int64_t first_difference(const std::string& a, const std::string& b) {
  const size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i)
    if (a[i] != b[i]) return int64_t(i);
  return a.size() == b.size() ? -1 : int64_t(n);
}

// Per-slot mean squared activations of an entry (sum / count; 0 for an empty slot), laid out
// per expert: for comparing entries whose counts were folded into one (legacy .dat).
inline std::vector<double> slot_means(const imatrix::Entry& e, size_t n_slots) {
  const size_t n = e.sums.size() / n_slots;
  std::vector<double> out(e.sums.size());
  for (size_t i = 0; i < e.sums.size(); ++i) {
    const double c = e.counts.size() == 1 ? e.counts[0] : e.counts[i / n];
    out[i] = c > 0 ? double(e.sums[i]) / c : 0.0;
  }
  return out;
}

// Relative L2 distance |a - b| / |b| (0 when both are zero).
inline double rel_l2(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

// The [k]ppl values of a line like "[1]65.2111,[2]166.4699,".
inline std::vector<double> chunk_ppls(const std::string& text) {
  std::vector<double> v;
  const size_t start = text.find("[1]");
  if (start == std::string::npos) return v;
  size_t p = start;
  while (p < text.size() && text[p] == '[') {
    const size_t close = text.find(']', p), comma = text.find(',', p);
    if (close == std::string::npos || comma == std::string::npos) break;
    v.push_back(std::stod(text.substr(close + 1, comma - close - 1)));
    p = comma + 1;
  }
  return v;
}

}  // namespace imq::test
