// Importance vectors as llama-quantize reads them from an imatrix file (spec e.1): a GGUF
// imatrix (in_sum2 / counts, a zero count giving 1.0) or a legacy .dat (values / ncall).
// Kept small and separate: the shared imatrix loader will replace the file parsing.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "imq/imatrix.h"

namespace imq::quantize {

struct ImportanceData {
  std::vector<std::string> datasets;
  uint32_t chunk_count = 0;  // imatrix.chunk_count (GGUF) or the .dat trailer's last_chunk
  // Per weight name, ne0 * n_slots floats (expert e owns the slice e*ne0 .. e*ne0+ne0-1).
  std::map<std::string, std::vector<float>> entries;
};

// The importance of an in-memory imatrix (imq::imatrix::collect's result), exactly as
// load_importance reads the GGUF file that imatrix would be saved as.
ImportanceData importance_from(const imatrix::Imatrix& m);

// Reads `path` (GGUF when it starts with the GGUF magic, else legacy .dat). Throws imq::Error
// naming the file and entry for malformed data or non-finite values.
ImportanceData load_importance(const std::string& path);

// --include-weights / --exclude-weights: keep entries whose name contains one of `include`
// (when given), then drop those containing any of `exclude`.
void filter_importance(ImportanceData& data, const std::vector<std::string>& include,
                       const std::vector<std::string>& exclude);

}  // namespace imq::quantize
