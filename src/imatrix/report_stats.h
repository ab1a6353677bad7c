// Per-tensor statistics of an importance matrix as defined by llama-imatrix --show-statistics
// (spec d): over the per-column mean squared activations a = sum / count of the slots that saw
// tokens. Used by the report until the imatrix statistics module lands.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "imq/imatrix.h"

namespace imq::imatrix {

struct TensorStats {
  float sum = 0;        // Σ a
  float min = 0, max = 0;
  float mean = 0;       // μ = Σ a / N
  float stddev = 0;     // σ (population)
  float active = 0;     // % of |a| > 1e-5
  int64_t n = 0;        // N: ne0 x non-empty slots
  float entropy = 0;    // bits, of p = a / Σ a
  float entropy_norm = 0;  // % of log2(N)
  float zd = 0;         // % of (a - μ)/σ > 1
  float cossim = 0;     // raw sums vs the same tensor of the previous block; 0 if none
};

// nullopt when the entry has no counts, sums.size() is not a multiple of counts.size(), or
// every slot has count 0 (the spec skips such entries).
std::optional<TensorStats> tensor_stats(const Entry& e, const Entry* previous_block);

// "blk.12.attn_q.weight" -> 12; -1 for names outside a block.
int layer_of(const std::string& name);
// The component before "weight" ("attn_q", "ffn_down_exps"); the full name if none.
std::string kind_of(const std::string& name);
// The same tensor one block earlier ("blk.3.x.weight" -> "blk.2.x.weight"); "" for block 0 or
// non-block tensors.
std::string previous_block_name(const std::string& name);

}  // namespace imq::imatrix
