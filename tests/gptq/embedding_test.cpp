// The token embedding's importance (gptq/embedding.h) on a hand-made file: each norm's gain
// squared times the column sums of squares of the weights that read it, summed.
#include <gtest/gtest.h>

#include <cstring>

#include "gptq/embedding.h"
#include "imq/gguf.h"

namespace imq::test {
namespace {

void add_f32(gguf::Writer& w, const std::string& name, std::vector<int64_t> ne, const std::vector<float>& v) {
  std::vector<uint8_t> bytes(v.size() * sizeof(float));
  std::memcpy(bytes.data(), v.data(), bytes.size());
  w.add_tensor(name, GgmlType::F32, ne, std::move(bytes));
}

// n_embd 4, one layer; ffn_up stored as F16 (read through its codec).
gguf::Writer layer_file(bool with_output) {
  gguf::Writer w;
  add_f32(w, "blk.0.attn_norm.weight", {4}, {1, 2, 0, 0.5f});
  add_f32(w, "blk.0.attn_q.weight", {4, 2}, {1, 0, 1, 2, 1, 1, 0, 0});  // column squares 2 1 1 4
  add_f32(w, "blk.0.attn_k.weight", {4, 1}, {0, 1, 0, 0});              // + 0 1 0 0
  add_f32(w, "blk.0.ffn_norm.weight", {4}, {1, 1, 1, 1});
  // 2, -1, 0.5, 0 as F16 bits: column squares 4 1 0.25 0
  const uint16_t up[4] = {0x4000, 0xBC00, 0x3800, 0x0000};
  std::vector<uint8_t> ub(sizeof up);
  std::memcpy(ub.data(), up, sizeof up);
  w.add_tensor("blk.0.ffn_up.weight", GgmlType::F16, std::vector<int64_t>{4, 1}, std::move(ub));
  add_f32(w, "output_norm.weight", {4}, {0, 1, 0, 1});
  add_f32(w, "token_embd.weight", {4, 2}, {1, 0, 0, 0, 0, 2, 0, 0});  // column squares 1 4 0 0
  if (with_output) add_f32(w, "output.weight", {4, 1}, {1, 1, 1, 1});
  return w;
}

// got equals raw scaled to mean 1.
void expect_mean_one(const std::vector<float>& got, const std::vector<float>& raw) {
  ASSERT_EQ(got.size(), raw.size());
  float mean = 0;
  for (float r : raw) mean += r / float(raw.size());
  for (size_t j = 0; j < raw.size(); ++j) EXPECT_FLOAT_EQ(got[j], raw[j] / mean) << j;
}

TEST(EmbeddingImportance, GainSquaredTimesConsumerColumnSquares) {
  auto f = gguf::File::from_memory("m.gguf", layer_file(true).to_bytes());
  // attn: (1 4 0 0.25) * (2 2 1 4) = 2 8 0 1; ffn: 4 1 0.25 0; output: (0 1 0 1) * (1 1 1 1)
  expect_mean_one(gptq::embedding_importance(f, 4, 1), {6, 10, 0.25f, 2});
}

TEST(EmbeddingImportance, TiedOutputReadsTheEmbedding) {
  auto f = gguf::File::from_memory("m.gguf", layer_file(false).to_bytes());
  // output_norm (0 1 0 1) * token_embd's column squares (1 4 0 0) = 0 4 0 0
  expect_mean_one(gptq::embedding_importance(f, 4, 1), {6, 13, 0.25f, 1});
}

TEST(EmbeddingImportance, NoNormsNoImportance) {
  gguf::Writer w;
  add_f32(w, "token_embd.weight", {4, 2}, {1, 0, 0, 0, 0, 2, 0, 0});
  add_f32(w, "blk.0.attn_q.weight", {4, 1}, {1, 1, 1, 1});
  auto f = gguf::File::from_memory("m.gguf", w.to_bytes());
  EXPECT_TRUE(gptq::embedding_importance(f, 4, 1).empty());
}

}  // namespace
}  // namespace imq::test
