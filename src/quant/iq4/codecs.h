// The IQ4 block codecs (spec g.3, g.6), one file each; register.cpp lists them.
#pragma once
#include "imq/quant.h"

namespace imq::quant {

Codec iq4_nl_codec();
Codec iq4_xs_codec();

}  // namespace imq::quant
