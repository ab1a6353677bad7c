#include "quant/families.h"
#include "quant/iq4/codecs.h"

namespace imq::quant {

void add_iq4_codecs(std::vector<Codec>& out) {
  out.push_back(iq4_nl_codec());
  out.push_back(iq4_xs_codec());
}

}  // namespace imq::quant
