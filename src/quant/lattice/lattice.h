// The lattice search shared by the grid i-quants (IQ3_XXS, IQ2_XXS, ...; spec g.3): each group
// of `dim` magnitudes is coded as one point of a fixed grid, a subset of the lattice of odd
// values 2l+1 (l = 0 .. 2^bits - 1 per coordinate). llama-quantize rounds a group to the nearest
// lattice point; when that point is off the grid it takes the best of a precomputed neighbour
// list: every grid point at one of the `shells` smallest distinct squared distances.
//
// A lattice point is named by its packed levels: coordinate i at bits i*bits.. (the same packing
// as the grid codes). Only points whose levels are all below `n_levels` are looked up (the
// searches clamp to that range), so only those get neighbour lists.
//
// Each type builds its lattice once, on first use, as a function-local static const (e.g.
// iq3::xxs_lattice()): thread-safe by C++ rules and immutable afterwards. The lists depend only
// on the grid, and building them per tensor or per quantizer would repeat up to ~50 M distance
// evaluations (IQ2_S's 1024-point grid) for every tensor.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "quant/block_io.h"
#include "quant/legacy/search.h"

namespace imq::quant {

class Lattice {
 public:
  Lattice(std::span<const uint16_t> grid, int dim, int bits, int n_levels, int shells);

  int dim() const { return dim_; }
  int bits() const { return bits_; }
  int size() const { return int(points_.size() / size_t(dim_)); }
  // Grid index of the lattice point `code`, or -1 when it is not on the grid.
  int find(uint32_t code) const {
    return code < slot_.size() && slot_[code] >= 0 ? slot_[code] : -1;
  }
  // Grid point g's coordinates 2l+1.
  const int8_t* point(int g) const { return points_.data() + size_t(g) * size_t(dim_); }
  // For the off-grid point `code`: its neighbour minimizing sum w (scale*q - x)^2 (the first
  // on ties, in order of distance then index), q = 2l + 1 or, given, value[l]; writes that
  // point's levels to l and returns its grid index. Throws imq::Error for a code outside the
  // searched range (a broken search).
  int nearest(uint32_t code, const float* x, const float* w, float scale, int8_t* l,
              const float* value = nullptr) const;
  // Rounds `dim` magnitudes x at inverse scale id to the levels clamp(round((id x - 1) / 2), 0,
  // max_level) and returns true when that point is on the grid; otherwise writes the levels of
  // nearest(.., scale) instead and returns false. w: the weights of nearest.
  bool round(const float* x, const float* w, float id, float scale, int max_level, int8_t* l) const;
  // The packed code of dim levels.
  uint32_t pack(const int8_t* l) const {
    uint32_t u = 0;
    for (int i = 0; i < dim_; ++i) u |= uint32_t(l[i]) << (bits_ * i);
    return u;
  }

 private:
  int dim_, bits_;
  std::vector<int8_t> points_;       // [size][dim] coordinates 2l+1
  std::vector<int32_t> slot_;        // per code: grid index, or -(offset+1) into neighbours_
  std::vector<uint16_t> neighbours_; // at each offset: count, then that many grid indices
};

// sum w x q and sum w q^2 over n magnitudes x with levels L (q = 2L + 1), in order: the
// least-squares fit of one scale that every grid search ends with.
void fit_sums(int n, const float* x, const float* w, const int8_t* L, float* sumqx, float* sumq2);

// The trial-scale search of IQ3_XXS, IQ3_S and IQ2_XS over n magnitudes xval (n / dim groups,
// max their largest, > 0): for t = -trials..trials the inverse scale (2 max_level + 1 + t step) /
// max rounds every group to the grid (Lattice::round, weights waux); the trial with the largest
// (sum w x q)^2 / sum w q^2 wins. Then, with the winner's scale, groups are re-rounded: every
// group when any was off the grid (refit_all, IQ3_S; without a winner too), else only the
// off-grid ones; the scale is re-fitted. Writes the levels (0 when nothing won and nothing was
// re-rounded) and returns the scale (starting value max / (2 max_level + 1)).
struct TrialSearch {
  int max_level;  // highest level per coordinate
  int trials;
  float step;
  bool refit_all;
};
float trial_search(const Lattice& lat, const TrialSearch& p, int n, const float* xval, const float* w,
                   const float* waux, float max, int8_t* L);

// The sign byte of 7 stored sign bits: bit 7 makes the count of minus signs even (ggml's
// ksigns_iq2xs). Bit j set: value j is negative.
constexpr uint8_t sign_byte(uint32_t s7) {
  s7 &= 127;
  return uint8_t(s7 | ((uint32_t(__builtin_popcount(s7)) & 1u) << 7));
}

// Folds the signs of 8 values: xval = |x| and the returned bits mark the negative ones. The
// formats keep an even number of minus signs, so when the count is odd the value with the least
// w*x^2 (the first on ties) is stored with the wrong sign: its xval becomes -|x| and its bit
// flips. Returns the low 7 bits (the 8th follows from the parity).
uint8_t fold_signs(const float* x, const float* w, float* xval);

// One jointly coded sign group of n values (8, or 4 with free signs) at a fixed scale, for the
// error-compensated quantizer (quant/grid.h, GridOps::round_group): the codecs' own group step.
// The signs are folded (fold_signs, weights w) when the format keeps their parity, else taken
// as they are; each lattice group of magnitudes is then rounded at `scale` (Lattice::round,
// weights sqrt(w), as the codecs' searches use). Writes n levels to L (on the grid) and returns
// the sign bits (bit j: value j negative; 7 bits with parity).
uint8_t round_sign_group(const Lattice& lat, bool parity, int n, const float* x, const float* w,
                         float scale, int max_level, int8_t* L);

// The same for the IQ1 types, whose levels l decode to scale * value[l] (no sign bits): each
// of dim values x to its nearest level, an off-grid point replaced by its best grid neighbour
// (Lattice::nearest, weights w, as the IQ1 searches do). Writes the levels to L, returns the
// grid index and sets *err to the group's sum of w (scale value[l] - x)^2.
int round_valued_group(const Lattice& lat, const float* x, const float* w, float scale,
                       const float* value, int n_levels, int8_t* L, float* err);

// The code l of a sub-block scale s under block scale 1/id: the grid types store s as
// d * (2l + 1), l in 0..max.
inline int odd_scale_code(float id, float s, int max) {
  return std::clamp(nearest_int(0.5f * (id * s - 1)), 0, max);
}

// The row quantizer (Codec::quantize) of a lattice type: each row's 256-value super-blocks in
// order, each with its slice of the importance, through the type's block search on its lattice.
template <typename Block, Block (*QuantizeBlock)(const Lattice&, const float*, const float*),
          const Lattice& (*TheLattice)()>
size_t quantize_lattice_rows(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                             const float* importance) {
  constexpr int64_t kSuper = 256;
  const Lattice& lat = TheLattice();
  const int64_t nb = n_per_row / kSuper;
  for (int64_t r = 0; r < nrows; ++r)
    for (int64_t i = 0; i < nb; ++i) {
      const float* qw = importance ? importance + i * kSuper : nullptr;
      store_block(dst, r * nb + i, QuantizeBlock(lat, src + r * n_per_row + i * kSuper, qw));
    }
  return size_t(nrows * nb) * sizeof(Block);
}

}  // namespace imq::quant
