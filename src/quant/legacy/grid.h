// Block grids (quant/grid.h) of the legacy types Q4_0, Q4_1, Q5_0, Q5_1, Q8_0: the block's
// scale (and minimum) come from the codec's own fit; element j then decodes to d * q + offset
// with offset = -center * d (the symmetric types) or the block's minimum m (Q4_1, Q5_1).
// The fit's importance weights use the block's own mean square for the row's (the row is not
// at hand block by block), which only the error-compensated path sees.
#pragma once
#include <algorithm>
#include <cmath>

#include "core/fp16.h"
#include "quant/block_io.h"
#include "quant/grid.h"
#include "quant/legacy/search.h"

namespace imq::quant {

// Block: the codec's block (fields d, and m when kMin); Fit(x, qw, sigma2) its block fit,
// Codes(block, q) its codes, Pack(q, block) their packing. Codes run qmin..qmax.
template <class Block, int kQK, int kQmin, int kQmax, int kCenter, bool kMin,
          Block (*Fit)(const float*, const float*, float), void (*Codes)(const Block&, int8_t*),
          void (*Pack)(const int8_t*, Block&)>
struct LegacyGrid {
  static void fit(const float* x, const float* qw, int /*variant*/, void* block, BlockGrid& g) {
    const Block b = Fit(x, qw, qw ? row_sigma2(x, kQK) : 0.0f);
    store_block(block, 0, b);
    const float d = f16_to_f32(b.d);
    float offset = -float(kCenter) * d;
    if constexpr (kMin) offset = f16_to_f32(b.m);
    g.qmin = kQmin, g.qmax = kQmax, g.levels = nullptr;
    for (int j = 0; j < kQK; ++j) g.step[j] = d, g.offset[j] = offset;
    Codes(b, g.q);
  }
  static void store(const BlockGrid& g, void* block) {
    Block b = load_block<Block>(block, 0);
    Pack(g.q, b);
    store_block(block, 0, b);
  }
  static constexpr GridOps ops{1, fit, store};
};

}  // namespace imq::quant
