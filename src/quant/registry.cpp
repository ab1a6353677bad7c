#include <algorithm>

#include "imq/error.h"
#include "quant/families.h"

namespace imq::quant {

const std::vector<Codec>& all_codecs() {
  // Built once, immutable afterwards.
  static const std::vector<Codec> table = [] {
    std::vector<Codec> t;
    add_float_codecs(t);
    add_legacy_codecs(t);
    add_kquant_codecs(t);
    add_iq1_codecs(t);
    add_iq2_codecs(t);
    add_iq3_codecs(t);
    add_iq4_codecs(t);
    add_q3_hifi_codec(t);
    std::sort(t.begin(), t.end(), [](const Codec& a, const Codec& b) { return a.type < b.type; });
    return t;
  }();
  return table;
}

const Codec* find_codec(GgmlType type) {
  for (const auto& c : all_codecs())
    if (c.type == type) return &c;
  return nullptr;
}

const Codec& codec(GgmlType type) {
  if (const Codec* c = find_codec(type)) return *c;
  throw_error("no codec for tensor type {}", ggml_type_display_name(type));
}

size_t row_size(const Codec& c, int64_t n) { return size_t(n / c.block_size) * c.type_size; }

}  // namespace imq::quant
