// The imatrix file formats against llama-imatrix's reference files: GGUF read + write is
// byte-identical, GGUF -> .dat equals llama-imatrix's conversion byte for byte, .dat -> GGUF ->
// .dat is exact, MoE per-expert means survive the legacy format, merging a file with itself
// reproduces llama-imatrix's combined file.
#include <gtest/gtest.h>

#include <cmath>

#include "imatrix_test_util.h"

namespace imq::test {
namespace {

using namespace imq::imatrix;

class RefFormats : public ::testing::TestWithParam<RefImatrix> {};

TEST_P(RefFormats, GgufReadWriteIsByteIdentical) {
  const RefImatrix& r = GetParam();
  IMQ_NEED_SHARED(path, r.base() + ".gguf");
  Imatrix m = read_gguf(path);
  EXPECT_EQ(m.chunk_size, r.chunk_size);
  EXPECT_EQ(m.datasets, std::vector<std::string>{"data/calibration_datav3_small.txt"});
  for (const auto& [name, e] : m.entries) {
    EXPECT_TRUE(name.ends_with(".weight")) << name;
    EXPECT_EQ(e.counts.size(), r.moe && name.find("_exps") != std::string::npos ? 4u : 1u) << name;
  }
  TempDir d;
  write_gguf(m, d.file("out.gguf"));
  const std::string a = read_all(path), b = read_all(d.file("out.gguf"));
  EXPECT_EQ(first_difference(a, b), -1) << "sizes " << a.size() << " vs " << b.size();
}

TEST_P(RefFormats, GgufToDatEqualsLlamaImatrixConversion) {
  const RefImatrix& r = GetParam();
  IMQ_NEED_SHARED(gguf_path, r.base() + ".gguf");
  IMQ_NEED_SHARED(dat_path, r.base() + ".dat");
  TempDir d;
  auto skipped = write_dat(read_gguf(gguf_path), d.file("out.dat"), r.chunk_size);
  EXPECT_TRUE(skipped.empty());
  const std::string a = read_all(dat_path), b = read_all(d.file("out.dat"));
  EXPECT_EQ(first_difference(a, b), -1) << "sizes " << a.size() << " vs " << b.size();
}

TEST_P(RefFormats, DatToGgufToDatIsExact) {
  const RefImatrix& r = GetParam();
  IMQ_NEED_SHARED(dat_path, r.base() + ".dat");
  ReadOptions ro;
  ro.chunk_size = r.chunk_size;
  Imatrix m = read_dat(dat_path, ro);
  EXPECT_EQ(m.chunk_count, r.moe ? 8u : read_gguf(shared_file(r.base() + ".gguf")).chunk_count);
  TempDir d;
  write_gguf(m, d.file("a.gguf"));
  Imatrix g = read_gguf(d.file("a.gguf"));
  for (const auto& [name, e] : g.entries) EXPECT_EQ(e.counts.size(), 1u) << name;  // one ncall per entry
  write_dat(g, d.file("b.dat"), r.chunk_size);
  const std::string a = read_all(dat_path), b = read_all(d.file("b.dat"));
  EXPECT_EQ(first_difference(a, b), -1) << "sizes " << a.size() << " vs " << b.size();
}

// Spec j.19: the legacy format has one ncall per entry, so per-expert counts are lost but the
// per-expert means survive.
TEST_P(RefFormats, MeansSurviveTheLegacyFormat) {
  const RefImatrix& r = GetParam();
  IMQ_NEED_SHARED(gguf_path, r.base() + ".gguf");
  IMQ_NEED_SHARED(dat_path, r.base() + ".dat");
  ReadOptions ro;
  ro.chunk_size = r.chunk_size;
  Imatrix g = read_gguf(gguf_path), l = read_dat(dat_path, ro);
  ASSERT_EQ(g.entries.size(), l.entries.size());
  for (const auto& [name, e] : g.entries) {
    ASSERT_TRUE(l.entries.count(name)) << name;
    const Entry& le = l.entries.at(name);
    ASSERT_EQ(le.sums.size(), e.sums.size()) << name;
    auto want = slot_means(e, e.counts.size()), got = slot_means(le, 1);
    // A .dat value is mean * ncall; reading multiplies by chunk_size and divides by
    // ncall * chunk_size: equal to ~1 ulp.
    for (size_t i = 0; i < want.size(); ++i)
      ASSERT_NEAR(got[i], want[i], 1e-6 * std::fabs(want[i]) + 1e-30) << name << " [" << i << "]";
  }
}

TEST_P(RefFormats, MergeWithSelfEqualsLlamaImatrix) {
  const RefImatrix& r = GetParam();
  IMQ_NEED_SHARED(path, r.base() + ".gguf");
  IMQ_NEED_SHARED(merged_path, r.base() + "-merged-self.gguf");
  Imatrix m = read_gguf(path);
  std::vector<MergeInput> in = {{path, m}, {path, m}};
  Imatrix merged = merge(in);
  EXPECT_EQ(merged.chunk_count, 2 * m.chunk_count);
  EXPECT_EQ(merged.datasets.size(), 2u);
  TempDir d;
  write_gguf(merged, d.file("merged.gguf"));
  const std::string a = read_all(merged_path), b = read_all(d.file("merged.gguf"));
  EXPECT_EQ(first_difference(a, b), -1) << "sizes " << a.size() << " vs " << b.size();
}

INSTANTIATE_TEST_SUITE_P(Reference, RefFormats, ::testing::ValuesIn(ref_imatrices()), ref_imatrix_name);

}  // namespace
}  // namespace imq::test
