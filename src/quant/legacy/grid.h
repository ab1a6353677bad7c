// Block grids (quant/grid.h) of the legacy types Q4_0, Q4_1, Q5_0, Q5_1, Q8_0: the block's
// scale (and minimum) come from the codec's own fit; element j then decodes to d * q + offset
// with offset = -center * d (the symmetric types) or the block's minimum m (Q4_1, Q5_1).
// The fit's importance weights use the block's own mean square for the row's (the row is not
// at hand block by block), which only the error-compensated path sees.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "quant/block_io.h"
#include "quant/grid.h"
#include "quant/legacy/search.h"

namespace imq::quant {

// The codes of the 4-bit layouts (Q4_0, Q4_1): element j in the low nibble of qs[j], j + 16
// in the high one; the 5-bit ones (Q5_0, Q5_1) add bit j of the little-endian u32 qh.
template <class Block>
void nibble_codes(const Block& b, int8_t* q) {
  constexpr int kHalf = int(sizeof(b.qs));
  for (int j = 0; j < kHalf; ++j) q[j] = int8_t(b.qs[j] & 0x0f), q[j + kHalf] = int8_t(b.qs[j] >> 4);
}
template <class Block>
void five_bit_codes(const Block& b, int8_t* q) {
  nibble_codes(b, q);
  uint32_t qh;
  std::memcpy(&qh, b.qh, sizeof qh);
  for (int j = 0; j < 2 * int(sizeof(b.qs)); ++j) q[j] = int8_t(q[j] | int(((qh >> j) & 1) << 4));
}

// Block: the codec's block (fields d, and m when kMin); Fit(x, qw, sigma2) its block fit,
// Codes(block, q) its codes, Pack(q, block) their packing. Codes run qmin..qmax.
template <class Block, int kQK, int kQmin, int kQmax, int kCenter, bool kMin,
          Block (*Fit)(const float*, const float*, float), void (*Codes)(const Block&, int8_t*),
          void (*Pack)(const uint8_t*, Block&)>
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
    uint8_t q[kQK];
    for (int j = 0; j < kQK; ++j) q[j] = uint8_t(g.q[j]);
    Pack(q, b);
    store_block(block, 0, b);
  }
  static constexpr GridOps ops{1, fit, store};
};

}  // namespace imq::quant
