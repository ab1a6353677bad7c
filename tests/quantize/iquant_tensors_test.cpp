// Per-tensor byte identity of the i-quant codecs: every tensor that llama-quantize wrote as an
// i-quant type (IQ1_S ... IQ4_XS) in every i-quant reference mix, converted alone with its
// planned importance, has the sha256 of the reference listing (*.tensors.tsv); a failure names
// the tensor and type. Whole files (every tensor, metadata, offsets) are checked in
// exact_test.cpp. A type without a codec would be skipped and counted here.
#include <gtest/gtest.h>

#include <map>

#include "common/sha256.h"
#include "imq/quant.h"
#include "imq/quantize.h"
#include "reference_cases.h"

namespace imq::test {
namespace {

using namespace imq::quantize;

bool is_iquant(GgmlType t) {
  switch (t) {
    case GgmlType::IQ1_S: case GgmlType::IQ1_M: case GgmlType::IQ2_XXS: case GgmlType::IQ2_XS:
    case GgmlType::IQ2_S: case GgmlType::IQ3_XXS: case GgmlType::IQ3_S: case GgmlType::IQ4_NL:
    case GgmlType::IQ4_XS:
      return true;
    default:
      return false;
  }
}

// name -> sha256 column of a tensors.tsv listing.
std::map<std::string, std::string> listed_sha(const std::string& path) {
  std::map<std::string, std::string> m;
  for (const auto& l : split_lines(read_all(path))) m[l.substr(0, l.find('\t'))] = l.substr(l.rfind('\t') + 1);
  return m;
}

class IQuantTensors : public ::testing::TestWithParam<RefCase> {};

TEST_P(IQuantTensors, EqualLlamaQuantize) {
  const RefCase& c = GetParam();
  IMQ_NEED_SHARED(ref_path, c.stem() + ".tensors.tsv");
  IMQ_NEED_SHARED(model_path, c.input());
  InShared cwd;
  gguf::File model = gguf::File::open(c.input());
  Options opt = options_for(c);
  opt.dry_run = true;  // plans the types without a codec too; those tensors are skipped
  const Plan plan = make_plan(model, opt);
  const auto want = listed_sha(c.stem() + ".tensors.tsv");
  int checked = 0, skipped = 0;
  for (const auto& tp : plan.tensors) {
    if (!tp.quantize || !is_iquant(tp.dst_type)) continue;
    if (!quant::find_codec(tp.dst_type)) {
      ++skipped;
      continue;
    }
    ASSERT_TRUE(want.count(tp.name)) << tp.name;
    const auto bytes = quantize::quantize_tensor(model, tp, tp.dst_type, Search::kReference, 2);
    EXPECT_EQ(sha256_hex(bytes), want.at(tp.name)) << tp.name << " " << ggml_type_display_name(tp.dst_type);
    ++checked;
  }
  std::printf("%s: %d i-quant tensors identical, %d without a codec yet\n", c.stem().c_str(), checked, skipped);
  EXPECT_GT(checked, 0);
}

INSTANTIATE_TEST_SUITE_P(Reference, IQuantTensors, ::testing::ValuesIn(iquant_plan_cases()),
                         [](const auto& info) { return info.param.label(); });

}  // namespace
}  // namespace imq::test
