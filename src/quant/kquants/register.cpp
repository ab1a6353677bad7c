#include "quant/families.h"
#include "quant/kquants/kquants.h"

namespace imq::quant {

void add_kquant_codecs(std::vector<Codec>& out) {
  out.push_back(q2_k_codec());
  out.push_back(q3_k_codec());
  out.push_back(q4_k_codec());
  out.push_back(q5_k_codec());
  out.push_back(q6_k_codec());
  out.push_back(q8_k_codec());
}

}  // namespace imq::quant
