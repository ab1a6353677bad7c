// The legacy block codecs (spec g.3, g.6), one file each; register.cpp lists them.
#pragma once
#include "imq/quant.h"

namespace imq::quant {

Codec q4_0_codec();
Codec q4_1_codec();
Codec q5_0_codec();
Codec q5_1_codec();
Codec q8_0_codec();

}  // namespace imq::quant
