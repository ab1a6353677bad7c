// mistral.rs .cimatrix files, written by the test from the MoE reference imatrix (module paths,
// experts flattened expert-major, values = mean * ncalls): read back with the model or with the
// expert count, they give the reference's entries and per-expert means (scaled by ncalls).
#include <gtest/gtest.h>

#include <cstring>

#include "imatrix_test_util.h"
#include "imq/error.h"

namespace imq::test {
namespace {

using namespace imq::imatrix;

// The mistral.rs module path of a GGUF weight of a Mixtral-style model.
std::string module_path(const std::string& name) {
  if (name == "output.weight") return "lm_head";
  const size_t a = name.find('.', 4), b = name.rfind(".weight");
  const std::string layer = name.substr(4, a - 4), comp = name.substr(a + 1, b - a - 1);
  const std::map<std::string, std::string> m = {
      {"attn_q", "self_attn.q_proj"},          {"attn_k", "self_attn.k_proj"},
      {"attn_v", "self_attn.v_proj"},          {"attn_output", "self_attn.o_proj"},
      {"ffn_gate_inp", "block_sparse_moe.gate"}, {"ffn_gate_exps", "block_sparse_moe.experts.w1"},
      {"ffn_up_exps", "block_sparse_moe.experts.w3"}, {"ffn_down_exps", "block_sparse_moe.experts.w2"}};
  return "model.layers." + layer + "." + m.at(comp);
}

void put_u64(std::string& s, uint64_t v) { s.append(reinterpret_cast<const char*>(&v), 8); }

constexpr float kNcalls = 3.0f;

// Entries in reverse order (the format's order is a hash map's, so none may be assumed).
std::string cimatrix_bytes(const Imatrix& m) {
  std::string s;
  put_u64(s, m.entries.size());
  for (auto it = m.entries.rbegin(); it != m.entries.rend(); ++it) {
    const std::string key = module_path(it->first);
    put_u64(s, key.size());
    s += key;
    const Entry& e = it->second;
    put_u64(s, e.sums.size());
    const size_t n = e.sums.size() / e.counts.size();
    for (size_t i = 0; i < e.sums.size(); ++i) {
      const float c = e.counts[i / n];
      const float v = c > 0 ? e.sums[i] / c * kNcalls : 0.0f;
      s.append(reinterpret_cast<const char*>(&v), 4);
    }
  }
  return s;
}

void expect_like_reference(const Imatrix& ref, const Imatrix& got) {
  ASSERT_EQ(got.entries.size(), ref.entries.size());
  for (const auto& [name, e] : ref.entries) {
    ASSERT_TRUE(got.entries.count(name)) << name;
    const Entry& g = got.entries.at(name);
    ASSERT_EQ(g.counts.size(), e.counts.size()) << name;
    ASSERT_EQ(g.sums.size(), e.sums.size()) << name;
    auto want = slot_means(e, e.counts.size()), have = slot_means(g, g.counts.size());
    for (size_t i = 0; i < want.size(); ++i)
      ASSERT_NEAR(have[i], want[i] * kNcalls, 1e-6 * want[i] * kNcalls) << name << "[" << i << "]";
  }
}

TEST(Cimatrix, ReadWithModelOrExpertCount) {
  IMQ_NEED_SHARED(ref_path, "reference/moe-gpt2bpe/imatrix-calib-c256.gguf");
  IMQ_NEED_SHARED(model_path, "models/moe-gpt2bpe-f32.gguf");
  const Imatrix ref = read_gguf(ref_path);
  TempDir d;
  const std::string p = d.file("moe.cimatrix");
  write_bytes(p, cimatrix_bytes(ref));
  EXPECT_EQ(detect_format(p), Format::Cimatrix);

  ReadOptions with_model;
  with_model.chunk_size = 256;
  with_model.model_path = model_path;
  expect_like_reference(ref, load(p, with_model));

  ReadOptions with_count;
  with_count.chunk_size = 256;
  with_count.n_expert = 4;
  Imatrix m = load(p, with_count);
  expect_like_reference(ref, m);
  EXPECT_EQ(m.chunk_size, 256u);
  // GGUF written from it has llama.cpp's expert shapes.
  write_gguf(m, d.file("moe.gguf"));
  EXPECT_EQ(read_gguf(d.file("moe.gguf")).entries.at("blk.0.ffn_up_exps.weight").counts.size(), 4u);

  // Expert entries cannot be split without knowing the expert count.
  try {
    load(p, ReadOptions{});
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("experts"), std::string::npos) << e.what();
  }
  // A model of another shape is named in the error.
  IMQ_NEED_SHARED(other_model, "models/stories260K-f32.gguf");
  ReadOptions wrong = with_model;
  wrong.model_path = other_model;
  try {
    load(p, wrong);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(other_model), std::string::npos) << e.what();
  }
}

TEST(Cimatrix, CorruptFiles) {
  TempDir d;
  const std::string p = d.file("x.cimatrix");
  std::string good;
  put_u64(good, 1);
  const std::string key = "model.layers.0.mlp.up_proj";
  put_u64(good, key.size());
  good += key;
  put_u64(good, 2);
  good.append(8, '\0');
  write_bytes(p, good);
  EXPECT_EQ(load(p).entries.at("blk.0.ffn_up.weight").sums.size(), 2u);
  for (size_t cut = 0; cut < good.size(); ++cut) {
    write_bytes(p, good.substr(0, cut));
    EXPECT_THROW(load(p), Error) << cut;
  }
  write_bytes(p, good + "x");
  EXPECT_THROW(load(p), Error);
}

}  // namespace
}  // namespace imq::test
