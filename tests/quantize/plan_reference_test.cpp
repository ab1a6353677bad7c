// The plan alone (no codec runs) against llama-quantize's outputs: every tensor's type, shape,
// order and offset and every metadata key/value (info.tsv), or names/types/shapes
// (tensors.tsv) for the --pure codec256 files.
#include <gtest/gtest.h>

#include "imq/quantize.h"
#include "quantize/plan_internal.h"
#include "reference_cases.h"
#include "test_util_impl.h"

namespace imq::test {
namespace {

using namespace imq::quantize;

// Writes the plan's header with zero tensor data: `imq info --tsv` of it must equal the
// reference's info.tsv, which lists no data.
void write_header_only(const Plan& plan, const std::string& path) {
  uint64_t biggest = 0;
  for (const auto& t : plan.tensors) biggest = std::max(biggest, t.dst_bytes);
  std::vector<uint8_t> zeros(biggest);
  make_writer(plan).write(path, [&](size_t i) {
    return std::span<const uint8_t>(zeros.data(), plan.tensors[i].dst_bytes);
  });
}

// The plans of case `c` with its GGUF imatrix and with the legacy .dat converted from it.
struct GgufAndDatPlans {
  Plan from_gguf, from_dat;
};
GgufAndDatPlans plans_from_gguf_and_dat(const RefCase& c) {
  InShared cwd;
  gguf::File model = gguf::File::open(c.input());
  return {make_plan(model, options_for(c)), make_plan(model, options_for(c, c.imatrix_dat()))};
}

class PlanReference : public ::testing::TestWithParam<RefCase> {};

TEST_P(PlanReference, MatchesLlamaQuantize) {
  const RefCase& c = GetParam();
  const std::string listing = c.stem() + (c.has_info ? ".info.tsv" : ".tensors.tsv");
  IMQ_NEED_SHARED(ref_path, listing);
  IMQ_NEED_SHARED(model_path, c.input());
  InShared cwd;
  gguf::File model = gguf::File::open(c.input());
  Options opt = options_for(c);
  opt.dry_run = true;  // the plan alone: also for the types that have no codec yet
  Plan plan = make_plan(model, opt);
  const std::string want = read_all(listing);
  if (c.has_info) {
    TempDir dir;
    write_header_only(plan, dir.file("plan.gguf"));
    RunResult r = run_imq("info --tsv " + dir.file("plan.gguf"));
    ASSERT_EQ(r.rc, 0) << r.err;
    expect_same_lines(r.out, want, listing);
    EXPECT_EQ(plan.file_size, std::filesystem::file_size(dir.file("plan.gguf")));
  } else {
    std::string got;
    for (const auto& t : plan.tensors) {
      std::string shape;
      for (uint32_t d = 0; d < t.n_dims; ++d) shape += (d ? "," : "") + std::to_string(t.ne[d]);
      got += t.name + "\t" + std::string(ggml_type_info(t.dst_type)->name) + "\t" + shape + "\n";
    }
    std::string want_cols;  // drop the sha256 column
    for (const auto& l : split_lines(want)) want_cols += l.substr(0, l.rfind('\t')) + "\n";
    expect_same_lines(got, want_cols, listing);
  }
}

INSTANTIATE_TEST_SUITE_P(Reference, PlanReference, ::testing::ValuesIn(reference_cases()),
                         [](const auto& info) { return info.param.label(); });
INSTANTIATE_TEST_SUITE_P(IQuants, PlanReference, ::testing::ValuesIn(iquant_plan_cases()),
                         [](const auto& info) { return info.param.label(); });

// llama-quantize refuses the 1-2-bit i-quant mixes without an imatrix, naming the first tensor
// that needs one (reference/<model>/q-IQ2_XXS-noimat.log); a dry run only warns.
TEST(PlanIQuants, RefusedWithoutAnImatrix) {
  IMQ_NEED_SHARED(log, "reference/dense-spm4k/q-IQ2_XXS-noimat.log");
  IMQ_NEED_SHARED(model_path, "models/dense-spm4k-f32.gguf");
  const std::string ref = read_all(log);
  ASSERT_NE(ref.find("offending tensor: blk.0.attn_k.weight"), std::string::npos);
  gguf::File model = gguf::File::open(model_path);
  for (const char* mix : {"IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ1_S", "IQ1_M", "IQ3_XXS"}) {
    Options o;
    o.ftype = parse_ftype(mix).ftype;
    try {
      (void)make_plan(model, o);
      ADD_FAILURE() << mix << " planned without an imatrix";
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("blk.0.attn_k.weight"), std::string::npos) << mix << ": " << what;
      EXPECT_NE(what.find("--imatrix"), std::string::npos) << what;
    }
    o.dry_run = true;
    EXPECT_FALSE(make_plan(model, o).warnings.empty()) << mix;
  }
  Options o;  // IQ3_S and IQ3_M do not need one (their IQ3_S blocks search without)
  o.ftype = FType::IQ3_M;
  o.dry_run = true;
  EXPECT_TRUE(make_plan(model, o).warnings.empty());
}

// The legacy .dat made from the same imatrix gives the same plan and importance vectors
// (dense counts are whole chunks and ncall = 8, so (sum/count*ncall)/ncall is exact).
TEST(PlanImatrix, LegacyDatEqualsGguf) {
  const RefCase c{"dense-spm4k", "Q3_K_M", true, false, true, false};
  IMQ_NEED_SHARED(dat, c.imatrix_dat());
  IMQ_NEED_SHARED(model_path, c.input());
  const auto [a, b] = plans_from_gguf_and_dat(c);
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  size_t used = 0;
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    EXPECT_EQ(a.tensors[i].dst_type, b.tensors[i].dst_type) << a.tensors[i].name;
    EXPECT_EQ(a.tensors[i].importance_use, b.tensors[i].importance_use) << a.tensors[i].name;
    EXPECT_EQ(a.tensors[i].importance, b.tensors[i].importance) << a.tensors[i].name;
    used += a.tensors[i].importance_use == ImportanceUse::kUsed;
  }
  EXPECT_EQ(used, 28u);  // 7 matrices in each of 4 layers
  EXPECT_EQ(b.imatrix->chunk_count, 8u);
  EXPECT_EQ(b.imatrix->datasets, a.imatrix->datasets);
}

// For MoE the .dat keeps one ncall for per-expert means, so only the means survive (to an ulp).
TEST(PlanImatrix, LegacyDatMoeKeepsExpertMeans) {
  const RefCase c{"moe-gpt2bpe", "Q4_K_M", true, false, true, false};
  IMQ_NEED_SHARED(dat, c.imatrix_dat());
  IMQ_NEED_SHARED(model_path, c.input());
  const auto [a, b] = plans_from_gguf_and_dat(c);
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    ASSERT_EQ(a.tensors[i].importance.size(), b.tensors[i].importance.size()) << a.tensors[i].name;
    for (size_t k = 0; k < a.tensors[i].importance.size(); ++k)
      ASSERT_NEAR(a.tensors[i].importance[k], b.tensors[i].importance[k],
                  1e-6f * std::abs(a.tensors[i].importance[k]))
          << a.tensors[i].name << " [" << k << "]";
  }
}

// Expert e of a 3-D tensor gets in_sum2[e*ne0 ..] / counts[e].
TEST(PlanImatrix, ExpertSlicesAreDividedByTheirOwnCount) {
  IMQ_NEED_SHARED(imat, "reference/moe-gpt2bpe/imatrix-calib-c256.gguf");
  IMQ_NEED_SHARED(model_path, "models/moe-gpt2bpe-f32.gguf");
  InShared cwd;
  gguf::File model = gguf::File::open("models/moe-gpt2bpe-f32.gguf");
  gguf::File im = gguf::File::open("reference/moe-gpt2bpe/imatrix-calib-c256.gguf");
  Options opt;
  opt.ftype = FType::Q4_K_M;
  opt.imatrix_path = "reference/moe-gpt2bpe/imatrix-calib-c256.gguf";
  Plan p = make_plan(model, opt);
  const std::string name = "blk.2.ffn_down_exps.weight";
  auto it = std::find_if(p.tensors.begin(), p.tensors.end(), [&](auto& t) { return t.name == name; });
  ASSERT_NE(it, p.tensors.end());
  ASSERT_EQ(it->importance.size(), size_t(it->ne[0] * it->ne[2]));
  auto sums = im.tensor_data(im.tensor(name + ".in_sum2"));
  auto counts = im.tensor_data(im.tensor(name + ".counts"));
  const float* s = reinterpret_cast<const float*>(sums.data());
  const float* n = reinterpret_cast<const float*>(counts.data());
  ASSERT_GT(it->ne[2], 1);
  for (int64_t e = 0; e < it->ne[2]; ++e)
    for (int64_t j = 0; j < it->ne[0]; j += 37) {
      const size_t k = size_t(e * it->ne[0] + j);
      EXPECT_EQ(it->importance[k], n[e] > 0 ? s[k] / n[e] : 1.0f) << "expert " << e << " col " << j;
    }
}

}  // namespace
}  // namespace imq::test
