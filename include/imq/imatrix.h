// Importance matrices: the in-memory form shared by the collector, the file formats (GGUF
// imatrix, legacy .dat, mistral.rs .cimatrix), merge, statistics and the quantizer.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace imq::imatrix {

// One weight's data, in llama.cpp's GGUF-imatrix units: raw sums of squared activations and
// raw token counts (spec a). counts.size() = number of count slots (1 dense, n_expert for
// expert weights); sums.size() is a multiple of counts.size(), slot k owns
// sums[k*n .. k*n+n-1] with n = sums.size()/counts.size().
struct Entry {
  std::vector<float> sums;
  std::vector<float> counts;
};

struct Imatrix {
  std::vector<std::string> datasets;
  uint32_t chunk_count = 0;
  uint32_t chunk_size = 0;
  std::map<std::string, Entry> entries;  // by weight name; std::map gives llama.cpp's byte order
};

}  // namespace imq::imatrix
