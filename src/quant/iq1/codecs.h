// The ternary grid i-quants (spec g.3), one file per type; register.cpp lists them.
#pragma once
#include "imq/quant.h"
#include "quant/lattice/lattice.h"

namespace imq::quant {

Codec iq1_s_codec();
Codec iq1_m_codec();

namespace iq1 {
// The IQ1 grid as a searchable lattice (8 coordinates, levels 0..2, 3 neighbour shells), built
// on first use.
const Lattice& lattice();
}  // namespace iq1

}  // namespace imq::quant
