#include "quant/families.h"
#include "quant/legacy/codecs.h"

namespace imq::quant {

void add_legacy_codecs(std::vector<Codec>& out) {
  out.push_back(q4_0_codec());
  out.push_back(q4_1_codec());
  out.push_back(q5_0_codec());
  out.push_back(q5_1_codec());
  out.push_back(q8_0_codec());
}

}  // namespace imq::quant
