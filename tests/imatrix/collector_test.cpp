// The Collector fed hand-made matmul events: llama-imatrix's filter (blk.* only, output.weight
// on request, dense batches under 16 rows ignored, experts always), per-expert counts, whole
// chunks only in the totals, NaN/Inf naming tensor and chunk, the stop flag, and a resumed
// imatrix that does not fit.
#include <gtest/gtest.h>

#include <cmath>
#include <csignal>

#include "imatrix/collector.h"

namespace imq::test {
namespace {

using namespace imq::imatrix;

MatmulEvent dense(std::string_view w, const std::vector<float>& x, int64_t ne0) {
  return {w, ne0, int64_t(x.size()) / ne0, x.data(), -1, 0};
}
MatmulEvent expert(std::string_view w, const std::vector<float>& x, int64_t ne0, int32_t e, int32_t n) {
  return {w, ne0, int64_t(x.size()) / ne0, x.data(), e, n};
}

std::vector<float> rows(int64_t n_rows, int64_t ne0, float base) {
  std::vector<float> x(size_t(n_rows * ne0));
  for (size_t i = 0; i < x.size(); ++i) x[i] = base + float(i % size_t(ne0));
  return x;
}

TEST(Collector, FilterAndAccumulation) {
  Collector c({}, /*process_output=*/false);
  const auto x16 = rows(16, 2, 1.0f), x15 = rows(15, 2, 1.0f), x1 = rows(1, 2, 3.0f);
  c.on_matmul(dense("blk.0.attn_q.weight", x16, 2));
  c.on_matmul(dense("blk.0.attn_k.weight", x15, 2));   // < 16 rows: ignored
  c.on_matmul(dense("output.weight", x16, 2));         // only with --process-output
  c.on_matmul(dense("token_embd.weight", x16, 2));     // never
  c.on_matmul(expert("blk.0.ffn_up_exps.weight", x1, 2, 2, 4));  // experts: any row count
  EXPECT_TRUE(c.totals().entries.empty());  // nothing before the chunk ends
  c.end_chunk();
  const auto& e = c.totals().entries;
  ASSERT_EQ(e.size(), 2u);
  const Entry& q = e.at("blk.0.attn_q.weight");
  EXPECT_EQ(q.counts, std::vector<float>{16});
  EXPECT_EQ(q.sums, (std::vector<float>{16 * 1.0f, 16 * 4.0f}));
  const Entry& up = e.at("blk.0.ffn_up_exps.weight");
  EXPECT_EQ(up.counts, (std::vector<float>{0, 0, 1, 0}));
  EXPECT_EQ(up.sums, (std::vector<float>{0, 0, 0, 0, 9, 16, 0, 0}));

  Collector with_output({}, true);
  with_output.on_matmul(dense("output.weight", x16, 2));
  with_output.end_chunk();
  EXPECT_EQ(with_output.totals().entries.count("output.weight"), 1u);
}

TEST(Collector, DroppedChunkLeavesTotalsAlone) {
  Collector c({}, false);
  const auto x = rows(16, 3, 0.5f);
  c.on_matmul(dense("blk.1.ffn_down.weight", x, 3));
  c.end_chunk();
  const Imatrix after_one = c.totals();
  c.on_matmul(dense("blk.1.ffn_down.weight", x, 3));
  c.drop_chunk();
  c.end_chunk();  // an empty chunk adds nothing
  EXPECT_EQ(c.totals().entries.at("blk.1.ffn_down.weight").sums, after_one.entries.at("blk.1.ffn_down.weight").sums);
  EXPECT_EQ(c.totals().entries.at("blk.1.ffn_down.weight").counts, std::vector<float>{16});
}

TEST(Collector, NonFiniteNamesTensorAndChunk) {
  Collector c({}, false);
  c.set_chunk_index(7);
  auto x = rows(16, 4, 1.0f);
  x[21] = NAN;
  try {
    c.on_matmul(dense("blk.3.attn_output.weight", x, 4));
    ADD_FAILURE() << "expected an error";
  } catch (const NonFiniteActivations& e) {
    EXPECT_NE(std::string(e.what()).find("chunk 7"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("blk.3.attn_output.weight"), std::string::npos) << e.what();
  }
  auto y = rows(2, 4, 1.0f);
  y[0] = INFINITY;
  EXPECT_THROW(c.on_matmul(expert("blk.0.ffn_down_exps.weight", y, 4, 1, 2)), NonFiniteActivations);
}

TEST(Collector, StopFlag) {
  volatile std::sig_atomic_t stop = 0;
  Collector c({}, false, &stop);
  const auto x = rows(16, 2, 1.0f);
  c.on_matmul(dense("blk.0.attn_q.weight", x, 2));
  stop = 1;
  EXPECT_THROW(c.on_matmul(dense("blk.0.attn_q.weight", x, 2)), CollectionStopped);
}

TEST(Collector, ContinuesAnImatrixAndBroadcastsALegacyCount) {
  Imatrix start;
  start.entries["blk.0.attn_q.weight"] = {{1, 1}, {16}};
  start.entries["blk.0.ffn_up_exps.weight"] = {{2, 2, 2, 2}, {8}};  // legacy: one count
  Collector c(start, false);
  const auto x = rows(16, 2, 1.0f), x1 = rows(1, 2, 1.0f);
  c.on_matmul(dense("blk.0.attn_q.weight", x, 2));
  c.on_matmul(expert("blk.0.ffn_up_exps.weight", x1, 2, 1, 2));
  c.end_chunk();
  EXPECT_EQ(c.totals().entries.at("blk.0.attn_q.weight").counts, std::vector<float>{32});
  EXPECT_EQ(c.totals().entries.at("blk.0.ffn_up_exps.weight").counts, (std::vector<float>{8, 9}));

  Imatrix other;
  other.entries["blk.0.attn_q.weight"] = {{1, 1, 1}, {16}};
  Collector bad(other, false);
  bad.on_matmul(dense("blk.0.attn_q.weight", x, 2));
  try {
    bad.end_chunk();
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("blk.0.attn_q.weight"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace imq::test
