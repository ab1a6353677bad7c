#include "quant/families.h"
#include "quant/iq3/codecs.h"

namespace imq::quant {

void add_iq3_codecs(std::vector<Codec>& out) {
  out.push_back(iq3_xxs_codec());
  out.push_back(iq3_s_codec());
}

}  // namespace imq::quant
