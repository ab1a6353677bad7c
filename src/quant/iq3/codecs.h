// The 3-bit grid i-quants (spec g.3), one file per type; register.cpp lists them.
#pragma once
#include "imq/quant.h"
#include "quant/lattice/lattice.h"

namespace imq::quant {

Codec iq3_xxs_codec();
Codec iq3_s_codec();

namespace iq3 {
// IQ3_XXS's grid as a searchable lattice (4 coordinates, levels 0..7, 2 neighbour shells),
// built on first use.
const Lattice& xxs_lattice();
// IQ3_S's (4 coordinates, levels 0..7, 3 neighbour shells).
const Lattice& s_lattice();
}  // namespace iq3

}  // namespace imq::quant
