// Shared helpers of the imatrix tests: the four reference imatrices and file comparison.
#pragma once
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "imq/imatrix.h"
#include "test_util.h"

namespace imq::test {

struct RefImatrix {
  const char* model;  // folder under reference/
  uint32_t chunk_size;
  bool moe;
  std::string base() const {
    return std::string("reference/") + model + "/imatrix-calib-c" + std::to_string(chunk_size);
  }
};

inline const std::vector<RefImatrix>& ref_imatrices() {
  static const std::vector<RefImatrix> v = {
      {"stories260K", 128, false}, {"dense-spm4k", 256, false}, {"moe-gpt2bpe", 256, true}, {"codec256", 128, false}};
  return v;
}

inline std::string file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
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

}  // namespace imq::test
