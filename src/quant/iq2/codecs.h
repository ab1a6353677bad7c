// The 2-bit grid i-quants (spec g.3), one file per type; register.cpp lists them.
#pragma once
#include "imq/quant.h"
#include "quant/lattice/lattice.h"

namespace imq::quant {

Codec iq2_xxs_codec();
Codec iq2_xs_codec();
Codec iq2_s_codec();

namespace iq2 {
// IQ2_XXS's grid as a searchable lattice (8 coordinates, levels 0..2, 2 neighbour shells),
// built on first use.
const Lattice& xxs_lattice();
// IQ2_XS's (8 coordinates, levels 0..2, 2 neighbour shells).
const Lattice& xs_lattice();
// IQ2_S's (8 coordinates, levels 0..2, 1 neighbour shell).
const Lattice& s_lattice();
}  // namespace iq2

}  // namespace imq::quant
