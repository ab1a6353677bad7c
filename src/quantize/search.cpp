#include "quantize/search.h"

#include "imq/quant.h"

namespace imq::quantize {

namespace {

// llama.cpp's own search: exactly what the codec registry reproduces.
class ReferenceQuantizer final : public RowQuantizer {
 public:
  void require(GgmlType type) const override { (void)quant::codec(type); }
  size_t quantize(GgmlType type, const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                  const float* importance) const override {
    return quant::codec(type).quantize(src, dst, nrows, n_per_row, importance);
  }
};

// imq's search where the codec has one, the reference elsewhere.
class ImqQuantizer final : public RowQuantizer {
 public:
  void require(GgmlType type) const override { (void)quant::codec(type); }
  size_t quantize(GgmlType type, const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                  const float* importance) const override {
    const quant::Codec& c = quant::codec(type);
    const auto fn = c.quantize_imq ? c.quantize_imq : c.quantize;
    return fn(src, dst, nrows, n_per_row, importance);
  }
};

}  // namespace

Search tensor_search(const TensorPlan& tp, Search search) {
  return tp.importance_use == ImportanceUse::kMissing ? Search::kReference : search;
}

std::unique_ptr<RowQuantizer> make_row_quantizer(Search search) {
  switch (search) {
    case Search::kReference: return std::make_unique<ReferenceQuantizer>();
    case Search::kImq: return std::make_unique<ImqQuantizer>();
  }
  return std::make_unique<ReferenceQuantizer>();
}

}  // namespace imq::quantize
