// Each codec family appends its rows to the registry; one function per family, one file
// per type inside the family folder.
#pragma once
#include <vector>

#include "imq/quant.h"

namespace imq::quant {

void add_float_codecs(std::vector<Codec>& out);   // float/   F32 F16 BF16
void add_legacy_codecs(std::vector<Codec>& out);  // legacy/  Q4_0 Q4_1 Q5_0 Q5_1 Q8_0
void add_kquant_codecs(std::vector<Codec>& out);  // kquants/ Q2_K Q3_K Q4_K Q5_K Q6_K Q8_K
void add_iq1_codecs(std::vector<Codec>& out);     // iq1/     IQ1_S IQ1_M
void add_iq2_codecs(std::vector<Codec>& out);     // iq2/     IQ2_XXS IQ2_XS IQ2_S
void add_iq3_codecs(std::vector<Codec>& out);     // iq3/     IQ3_XXS IQ3_S
void add_iq4_codecs(std::vector<Codec>& out);     // iq4/     IQ4_NL IQ4_XS
void add_q3_hifi_codec(std::vector<Codec>& out);  // q3_hifi.cpp

}  // namespace imq::quant
