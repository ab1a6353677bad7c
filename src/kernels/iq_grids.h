// The i-quant grids as the SIMD kernels read them: each grid point's coordinates as signed
// bytes, 8 per point (IQ1, IQ2) or 4 (IQ3), so that a group decodes with one byte load and a
// widening. Built at compile time from the codecs' grids (quant/iq*/..._grid.h, ggml's words):
// plain constants, one copy per process (inline variables), no start-up work.
#pragma once
#include <array>
#include <cstdint>

#include "quant/iq1/iq1s_grid.h"
#include "quant/iq2/iq2s_grid.h"
#include "quant/iq2/iq2xs_grid.h"
#include "quant/iq2/iq2xxs_grid.h"
#include "quant/iq3/iq3s_grid.h"
#include "quant/iq3/iq3xxs_grid.h"

namespace imq::kernels::iq {

// Byte j of word(g) as coordinate j of point g (int8: IQ1's values are -1, 0, 1).
template <typename Word, int kPoints, int kDim>
constexpr std::array<int8_t, size_t(kPoints) * kDim> expand(Word (*word)(int)) {
  std::array<int8_t, size_t(kPoints) * kDim> a{};
  for (int g = 0; g < kPoints; ++g)
    for (int j = 0; j < kDim; ++j) a[size_t(g) * kDim + size_t(j)] = int8_t(uint8_t(word(g) >> (8 * j)));
  return a;
}

// IQ2: levels 8, 25, 43, as ggml's words hold them and the codecs multiply them.
inline constexpr auto kIq2Xxs = expand<uint64_t, 256, 8>(quant::iq2::xxs_grid_word);
inline constexpr auto kIq2Xs = expand<uint64_t, 512, 8>(quant::iq2::xs_grid_word);
inline constexpr auto kIq2S = expand<uint64_t, 1024, 8>(quant::iq2::s_grid_word);
// IQ3: 4 magnitudes per point; a group of 8 values is two points.
inline constexpr auto kIq3Xxs = expand<uint32_t, 256, 4>(quant::iq3::xxs_grid_word);
inline constexpr auto kIq3S = expand<uint32_t, 512, 4>(quant::iq3::s_grid_word);
// IQ1 (IQ1_S and IQ1_M): values l - 1 in {-1, 0, 1}, shifted by +-kDelta per group.
inline constexpr auto kIq1 = expand<uint64_t, 2048, 8>(quant::iq1::grid_word);

}  // namespace imq::kernels::iq
