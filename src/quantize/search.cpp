#include "quantize/search.h"

#include "imq/quant.h"
#include "quant/q3_hifi.h"

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

// Q3_HIFI with an outlier rule other than the codec's own; every other type as `inner`.
class Q3HifiRuleQuantizer final : public RowQuantizer {
 public:
  Q3HifiRuleQuantizer(std::unique_ptr<RowQuantizer> inner, quant::q3_hifi::Selection sel)
      : inner_(std::move(inner)), sel_(sel) {}
  void require(GgmlType type) const override { inner_->require(type); }
  size_t quantize(GgmlType type, const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                  const float* importance) const override {
    if (type != GgmlType::Q3_HIFI) return inner_->quantize(type, src, dst, nrows, n_per_row, importance);
    return quant::q3_hifi::quantize_rows(src, dst, nrows, n_per_row, importance, sel_);
  }

 private:
  std::unique_ptr<RowQuantizer> inner_;
  quant::q3_hifi::Selection sel_;
};

std::unique_ptr<RowQuantizer> make_search(Search search) {
  switch (search) {
    case Search::kReference: return std::make_unique<ReferenceQuantizer>();
    case Search::kImq: return std::make_unique<ImqQuantizer>();
  }
  return std::make_unique<ReferenceQuantizer>();
}

}  // namespace

Search tensor_search(const TensorPlan& tp, Search search) {
  return tp.importance_use == ImportanceUse::kMissing ? Search::kReference : search;
}

std::unique_ptr<RowQuantizer> make_row_quantizer(Search search, Q3HifiOutliers rule) {
  using quant::q3_hifi::Selection;
  switch (rule) {
    case Q3HifiOutliers::kSaving: return make_search(search);
    case Q3HifiOutliers::kMagnitude:
      return std::make_unique<Q3HifiRuleQuantizer>(make_search(search), Selection::kMagnitude);
    case Q3HifiOutliers::kJoint:
      return std::make_unique<Q3HifiRuleQuantizer>(make_search(search), Selection::kJoint);
  }
  return make_search(search);
}

}  // namespace imq::quantize
