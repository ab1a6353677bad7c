#include "quant/families.h"
#include "quant/iq2/codecs.h"

namespace imq::quant {

void add_iq2_codecs(std::vector<Codec>& out) {
  out.push_back(iq2_xxs_codec());
  out.push_back(iq2_xs_codec());
  out.push_back(iq2_s_codec());
}

}  // namespace imq::quant
