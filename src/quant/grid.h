// Block grids for error-compensated quantization (src/gptq). Such a quantizer fixes a block's
// parameters (scales, mins) first, from the codec's own search on the block's current values,
// and then chooses each element's code one at a time, nearest on the grid those parameters
// define, pushing each element's rounding error onto the elements not yet rounded. A type
// supports it with two functions in its codec row (Codec::grid): fit and store.
#pragma once
#include <cstdint>

namespace imq::quant {

// The values one block can take once its parameters are fixed: element i decodes to
// step[i] * level(q) + offset[i] for a code q in qmin..qmax, where level(q) = q for the
// uniform types and levels[q - qmin] for the non-uniform ones (IQ4's 16 values).
struct BlockGrid {
  static constexpr int kMax = 256;  // elements of the largest block
  float step[kMax];
  float offset[kMax];
  int qmin = 0, qmax = 0;
  const int8_t* levels = nullptr;
  int8_t q[kMax];  // the codes (fit: the search's own; store: the ones chosen)

  float value(int i, int code) const {
    return step[i] * float(levels ? levels[code - qmin] : code) + offset[i];
  }
  // The code whose value is nearest to x at element i (ties: the lower code).
  int nearest(int i, float x) const;
};

struct GridOps {
  // Candidate parameter sets per block: the error-compensated quantizer tries each and keeps
  // the one whose elements, rounded with error feedback, cost least.
  int n_variants;
  // Quantizes one block of x (block_size values, importance qw or null) with parameter set
  // `variant` (0: the codec's reference search; others: the type's own alternatives) into
  // `block` and describes its grid.
  void (*fit)(const float* x, const float* qw, int variant, void* block, BlockGrid& g);
  // Writes g.q into `block` (from fit), keeping its parameters. Types with group > 1 leave it
  // null: round_group writes the codes.
  void (*store)(const BlockGrid& g, void* block);
  // Elements coded jointly (1: each element on its own through BlockGrid::nearest).
  int group = 1;
  // For group > 1: with the parameters (scales) that fit wrote into `block`, chooses the codes
  // of the group of elements first .. first + group - 1 (first a multiple of group) for their
  // current values x, weighing their squared errors by w, and writes them into `block`. The
  // codec's own group step (sign folding, Lattice::round), so that fit's codes are a fixed
  // point: rounding a block's decoded values gives back its bytes.
  void (*round_group)(int first, const float* x, const float* w, void* block) = nullptr;
};

}  // namespace imq::quant
