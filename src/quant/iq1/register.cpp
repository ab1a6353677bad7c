#include "quant/families.h"
#include "quant/iq1/codecs.h"

namespace imq::quant {

void add_iq1_codecs(std::vector<Codec>& out) {
  out.push_back(iq1_s_codec());
  out.push_back(iq1_m_codec());
}

}  // namespace imq::quant
