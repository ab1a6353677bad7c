#include "quant/families.h"

namespace imq::quant {

void add_float_codecs(std::vector<Codec>& out) {
  (void)out;  // filled in as the family's codecs land
}

}  // namespace imq::quant
