// The mix rules on synthetic hyperparameters (spec f's table, verified against llama-quantize
// --dry-run on a 32-layer llama), the shape fallback, the quantizable-tensor filter, TYPE
// parsing and the importance loader's edge cases.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "imq/ggml_types.h"
#include "imq/quantize.h"
#include "quantize/importance.h"
#include "quantize/rules.h"
#include "test_util.h"

namespace imq::test {
namespace {

using namespace imq::quantize;
using G = GgmlType;
constexpr G id(G t) { return t; }

ModelInfo llama(int n_layer, int n_head = 8, int n_head_kv = 8, int n_expert = 0) {
  ModelInfo m;
  m.arch = "llama";
  m.n_layer = n_layer;
  m.n_head = n_head;
  m.n_head_kv = n_head_kv;
  m.n_expert = n_expert;
  m.has_output = true;
  m.n_attention_wv = n_layer;
  return m;
}

// Types of every tensor of a model, visited in llama-quantize's order, ne0 = 256.
std::map<std::string, GgmlType> mix(const ModelInfo& m, FType ft, bool imatrix = false) {
  const FTypeInfo& f = parse_ftype(std::to_string(uint32_t(ft)));
  MixState st;
  std::map<std::string, GgmlType> out;
  for (std::string n : {"output.weight", "token_embd.weight"}) out[n] = mix_type(m, st, ft, imatrix, n, 256, f.default_type);
  for (int i = 0; i < m.n_layer; ++i)
    for (std::string t : {"attn_k", "attn_output", "attn_q", "attn_v", "ffn_down", "ffn_gate", "ffn_up"}) {
      const std::string n = "blk." + std::to_string(i) + "." + t + ".weight";
      out[n] = mix_type(m, st, ft, imatrix, n, 256, f.default_type);
    }
  return out;
}

std::string L(int i, const std::string& t) { return "blk." + std::to_string(i) + "." + t + ".weight"; }

TEST(Rules, UseMoreBitsLayersForQ4KM) {
  const std::set<int> more = {0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31};
  for (FType ft : {FType::Q4_K_M, FType::Q5_K_M}) {
    auto t = mix(llama(32), ft);
    const G base = ft == FType::Q4_K_M ? id(G::Q4_K) : id(G::Q5_K);
    for (int i = 0; i < 32; ++i) {
      const G want = more.count(i) ? id(G::Q6_K) : base;
      EXPECT_EQ(t[L(i, "attn_v")], want) << i;
      EXPECT_EQ(t[L(i, "ffn_down")], want) << i;
      EXPECT_EQ(t[L(i, "attn_q")], base) << i;
      EXPECT_EQ(t[L(i, "ffn_up")], base) << i;
    }
    EXPECT_EQ(t["output.weight"], id(G::Q6_K));
    EXPECT_EQ(t["token_embd.weight"], base);
  }
}

TEST(Rules, OtherMixesOn32Layers) {
  auto q3m = mix(llama(32), FType::Q3_K_M);
  auto q3l = mix(llama(32), FType::Q3_K_L);
  auto q4s = mix(llama(32), FType::Q4_K_S);
  auto q2 = mix(llama(32), FType::Q2_K);
  for (int i = 0; i < 32; ++i) {
    EXPECT_EQ(q3m[L(i, "attn_v")], i < 2 ? id(G::Q5_K) : id(G::Q4_K)) << i;
    EXPECT_EQ(q3m[L(i, "ffn_down")], i < 2 ? id(G::Q5_K) : id(G::Q4_K)) << i;
    EXPECT_EQ(q3m[L(i, "attn_output")], id(G::Q4_K));
    for (auto n : {"attn_v", "attn_output", "ffn_down"}) EXPECT_EQ(q3l[L(i, n)], id(G::Q5_K));
    EXPECT_EQ(q4s[L(i, "attn_v")], i < 4 ? id(G::Q5_K) : id(G::Q4_K)) << i;
    EXPECT_EQ(q4s[L(i, "ffn_down")], i < 4 ? id(G::Q5_K) : id(G::Q4_K)) << i;
    for (auto n : {"attn_v", "attn_output", "ffn_down"}) EXPECT_EQ(q2[L(i, n)], id(G::Q3_K));
    EXPECT_EQ(q2[L(i, "attn_q")], id(G::Q2_K));
  }
  for (FType ft : {FType::Q3_K_S, FType::Q5_K_S, FType::Q6_K, FType::Q8_0}) {
    auto t = mix(llama(32), ft);
    const G base = parse_ftype(std::to_string(uint32_t(ft))).default_type;
    for (const auto& [name, type] : t)
      EXPECT_EQ(type, name == "output.weight" && ft != FType::Q8_0 ? id(G::Q6_K) : base) << name;
  }
  EXPECT_EQ(mix(llama(32), FType::Q4_0)["output.weight"], id(G::Q6_K));
}

// Q3_HIFI_M (rules.cpp, the note at mix_type): the first f = max(1, n/8) layers' FFN up, the
// last f layers' ffn_gate/ffn_up up when n >= 6f, ffn_down Q3_K in the layers between that pay
// for it, Q3_K_M's attention on dense models and Q3_HIFI attn_q, attn_v and attn_output on MoE
// models (not 8-expert ones).
TEST(Rules, Q3HifiMZones) {
  for (int n : {4, 5, 8, 32}) {
    auto t = mix(llama(n, 32, 8), FType::Q3_HIFI_M);
    const int first = std::max(1, n / 8);
    const bool last_up = n >= 6 * first;
    const int q3k_end = last_up ? 6 * first : std::min(n, 4 * first);
    for (int i = 0; i < n; ++i) {
      const G gate_up = i < first || (last_up && i >= n - first) ? id(G::Q4_K) : id(G::Q3_K);
      EXPECT_EQ(t[L(i, "ffn_gate")], gate_up) << n << " " << i;
      EXPECT_EQ(t[L(i, "ffn_up")], gate_up) << n << " " << i;
      const G down = i < first ? id(G::Q5_K) : i < q3k_end ? id(G::Q3_K) : id(G::Q4_K);
      EXPECT_EQ(t[L(i, "ffn_down")], down) << n << " " << i;
      EXPECT_EQ(t[L(i, "attn_v")], i < 2 ? id(G::Q5_K) : id(G::Q4_K)) << n << " " << i;
      EXPECT_EQ(t[L(i, "attn_output")], id(G::Q4_K));
      EXPECT_EQ(t[L(i, "attn_q")], id(G::Q3_K));
      EXPECT_EQ(t[L(i, "attn_k")], id(G::Q3_K));
    }
  }
  auto moe = mix(llama(8, 8, 8, 4), FType::Q3_HIFI_M);
  for (auto n : {"attn_q", "attn_v", "attn_output"}) EXPECT_EQ(moe[L(5, n)], id(G::Q3_HIFI)) << n;
  EXPECT_EQ(moe[L(5, "attn_k")], id(G::Q3_K));
  auto moe8 = mix(llama(8, 8, 8, 8), FType::Q3_HIFI_M);
  EXPECT_EQ(moe8[L(5, "attn_q")], id(G::Q3_K));
  EXPECT_EQ(moe8[L(5, "attn_v")], id(G::Q8_0));
  // Fewer than 4 layers: Q3_K_M's FFN types.
  auto small = mix(llama(3), FType::Q3_HIFI_M);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(small[L(i, "ffn_down")], id(G::Q4_K)) << i;
    EXPECT_EQ(small[L(i, "ffn_gate")], id(G::Q3_K)) << i;
  }
}

// Q3_HIFI_M's blk.* bytes never exceed Q3_K_M's, on shapes from 1 to 80 layers, dense (with
// and without GQA) and MoE (ffn tensors n_expert times larger): attn_q/attn_output d x d,
// attn_k/attn_v d x d * kv/heads, each FFN matrix d x 8d/3.
TEST(Rules, Q3HifiMWithinQ3KMBytes) {
  const auto bits = [](const ModelInfo& m, FType ft) {
    const auto t = mix(m, ft);
    const double d = 4096, kv = d * m.n_head_kv / m.n_head, ffn = d * 8 / 3 * std::max(1, m.n_expert);
    const std::map<std::string, double> size = {{"attn_q", d * d}, {"attn_output", d * d},
        {"attn_k", d * kv}, {"attn_v", d * kv}, {"ffn_down", d * ffn}, {"ffn_gate", d * ffn}, {"ffn_up", d * ffn}};
    double total = 0;
    for (int i = 0; i < m.n_layer; ++i)
      for (const auto& [kind, n] : size) {
        const auto info = ggml_type_info(t.at(L(i, kind)));
        total += n * info->type_size * 8 / info->block_size;
      }
    return total;
  };
  for (int n : {1, 2, 3, 4, 5, 7, 8, 12, 16, 24, 32, 40, 48, 60, 80})
    for (ModelInfo m : {llama(n), llama(n, 32, 8), llama(n, 8, 8, 4), llama(n, 32, 8, 8), llama(n, 16, 4, 16)}) {
      m.is_70b = n == 80 && m.n_head != m.n_head_kv && m.n_expert == 0;
      EXPECT_LE(bits(m, FType::Q3_HIFI_M), bits(m, FType::Q3_K_M))
          << n << " layers, " << m.n_head << "/" << m.n_head_kv << " heads, " << m.n_expert << " experts";
    }
}

TEST(Rules, GqaExpertsAndImatrixSpecialCases) {
  EXPECT_EQ(mix(llama(4, 32, 8), FType::Q2_K)[L(1, "attn_v")], id(G::Q4_K));  // n_gqa 4
  EXPECT_EQ(mix(llama(4, 32, 16), FType::Q2_K)[L(1, "attn_v")], id(G::Q3_K));
  auto moe8 = mix(llama(4, 32, 8, 8), FType::Q4_K_M);
  EXPECT_EQ(moe8[L(1, "attn_v")], id(G::Q8_0));
  EXPECT_EQ(moe8[L(1, "attn_k")], id(G::Q8_0));
  EXPECT_EQ(moe8[L(1, "attn_output")], id(G::Q5_K));
  auto q40 = mix(llama(16), FType::Q4_0, true), q40n = mix(llama(16), FType::Q4_0, false);
  auto q50 = mix(llama(16), FType::Q5_0, true);
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(q40[L(i, "ffn_down")], i < 2 ? id(G::Q4_1) : id(G::Q4_0)) << i;
    EXPECT_EQ(q40n[L(i, "ffn_down")], id(G::Q4_0)) << i;
    EXPECT_EQ(q50[L(i, "ffn_down")], i < 2 ? id(G::Q5_1) : id(G::Q5_0)) << i;
  }
  auto nl = mix(llama(16), FType::IQ4_NL), nl_im = mix(llama(16), FType::IQ4_NL, true);
  EXPECT_EQ(nl[L(1, "ffn_down")], id(G::Q5_K));
  EXPECT_EQ(nl[L(2, "ffn_down")], id(G::IQ4_NL));
  EXPECT_EQ(nl_im[L(1, "ffn_down")], id(G::IQ4_NL));
  EXPECT_EQ(mix(llama(16, 32, 8), FType::IQ4_XS)[L(5, "attn_v")], id(G::Q5_K));
  auto q2s = mix(llama(16), FType::Q2_K_S);
  EXPECT_EQ(q2s[L(1, "ffn_down")], id(G::Q4_K));
  EXPECT_EQ(q2s[L(2, "ffn_down")], id(G::Q2_K));
  ModelInfo b70 = llama(80, 64, 8);
  b70.is_70b = true;
  EXPECT_EQ(mix(b70, FType::Q3_K_M)[L(40, "attn_v")], id(G::Q5_K));
}

TEST(Rules, TiedEmbeddingsFollowTheOutputRule) {
  ModelInfo m = llama(4);
  m.has_output = false;
  MixState st;
  EXPECT_EQ(mix_type(m, st, FType::Q4_K_M, false, "token_embd.weight", 256, id(G::Q4_K)), id(G::Q6_K));
  EXPECT_EQ(mix_type(m, st, FType::Q4_K_M, false, "token_embd.weight", 64, id(G::Q4_K)), id(G::Q8_0));
}

TEST(Rules, MoeLayerComesFromTheName) {
  ModelInfo m = llama(8, 8, 8, 4);
  MixState st;
  // Out of order on purpose: the block number, not the counter, decides.
  EXPECT_EQ(mix_type(m, st, FType::Q4_K_M, false, "blk.7.ffn_down_exps.weight", 256, id(G::Q4_K)), id(G::Q6_K));
  EXPECT_EQ(mix_type(m, st, FType::Q4_K_M, false, "blk.4.ffn_down_exps.weight", 256, id(G::Q4_K)), id(G::Q4_K));
  EXPECT_THROW(mix_type(m, st, FType::Q4_K_M, false, "blk.9.ffn_down_exps.weight", 256, id(G::Q4_K)), Error);
  EXPECT_THROW(mix_type(m, st, FType::Q4_K_M, false, "ffn_down_exps.weight", 256, id(G::Q4_K)), Error);
}

TEST(Rules, ShapeFallback) {
  EXPECT_EQ(shape_fallback("t", 256, id(G::Q4_K)), id(G::Q4_K));
  EXPECT_EQ(shape_fallback("t", 64, id(G::Q4_K)), id(G::Q5_0));
  EXPECT_EQ(shape_fallback("t", 64, id(G::Q5_K)), id(G::Q5_1));
  EXPECT_EQ(shape_fallback("t", 64, id(G::Q6_K)), id(G::Q8_0));
  EXPECT_EQ(shape_fallback("t", 172, id(G::Q6_K)), id(G::F16));
  EXPECT_EQ(shape_fallback("t", 96, id(G::Q2_K)), id(G::Q4_0));
  EXPECT_EQ(shape_fallback("t", 96, id(G::Q3_K)), id(G::Q4_0));
  EXPECT_EQ(shape_fallback("t", 64, id(G::IQ4_XS)), id(G::IQ4_NL));
}

TEST(Rules, NoFallbackForQ8_0Throws) {
  try {
    shape_fallback("output.weight", 8, id(G::Q8_0));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("output.weight"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("no tensor type fallback"), std::string::npos) << e.what();
  }
}

TEST(Rules, WhichTensorsAreQuantized) {
  EXPECT_TRUE(is_quantizable("blk.0.attn_q.weight", 2, false));
  EXPECT_TRUE(is_quantizable("blk.0.ffn_up_exps.weight", 3, false));
  EXPECT_TRUE(is_quantizable("token_embd.weight", 2, false));
  EXPECT_TRUE(is_quantizable("output.weight", 2, false));
  EXPECT_FALSE(is_quantizable("output.weight", 2, true));
  EXPECT_FALSE(is_quantizable("blk.0.attn_norm.weight", 1, false));
  EXPECT_FALSE(is_quantizable("blk.0.attn_q_norm.weight", 2, false));
  EXPECT_FALSE(is_quantizable("blk.0.ffn_gate_inp.weight", 2, false));
  EXPECT_FALSE(is_quantizable("blk.0.attn_q.bias", 2, false));
  EXPECT_FALSE(is_quantizable("position_embd.weight", 2, false));
  EXPECT_FALSE(is_quantizable("blk.0.ssm_conv1d.weight", 2, false));
}

TEST(FileTypes, NamesAliasesAndNumbers) {
  EXPECT_EQ(parse_ftype("q4_k_m").ftype, FType::Q4_K_M);
  EXPECT_EQ(parse_ftype("Q4_K").ftype, FType::Q4_K_M);
  EXPECT_EQ(parse_ftype("Q3_K").ftype, FType::Q3_K_M);
  EXPECT_EQ(parse_ftype("q5_k").ftype, FType::Q5_K_M);
  EXPECT_EQ(parse_ftype("15").ftype, FType::Q4_K_M);
  EXPECT_EQ(parse_ftype("7").ftype, FType::Q8_0);
  EXPECT_EQ(parse_ftype("32").ftype, FType::MOSTLY_BF16);
  EXPECT_EQ(parse_ftype("0").default_type, id(G::F32));
  EXPECT_EQ(parse_ftype("IQ4_XS").default_type, id(G::IQ4_XS));
  EXPECT_EQ(parse_ftype("19").ftype, FType::IQ2_XXS);
  EXPECT_EQ(parse_ftype("IQ2_S").default_type, id(G::IQ2_XS));  // llama.cpp's defaults
  EXPECT_EQ(parse_ftype("iq2_m").default_type, id(G::IQ2_S));
  EXPECT_EQ(parse_ftype("IQ3_XS").default_type, id(G::IQ3_S));
  EXPECT_EQ(parse_ftype("IQ3_M").default_type, id(G::IQ3_S));
  for (const char* bad : {"", "Q4_K_X", "6", "15x", "-1", "Q4"}) EXPECT_THROW(parse_ftype(bad), Error) << bad;
  EXPECT_EQ(parse_tensor_type("Q8_0"), id(G::Q8_0));
  EXPECT_EQ(parse_tensor_type("q6_k"), id(G::Q6_K));
  EXPECT_THROW(parse_tensor_type("iq2_xxs"), Error);
  EXPECT_EQ(parse_search("reference"), Search::kReference);
  EXPECT_EQ(parse_search("IMQ"), Search::kImq);
  EXPECT_THROW(parse_search("best"), Error);
}

// --search imq keeps the reference search only where an imatrix has no entry for the tensor.
TEST(Search, ImqFallsBackWhereTheImatrixHasNoEntry) {
  TensorPlan tp;
  for (auto use : {ImportanceUse::kNone, ImportanceUse::kUsed, ImportanceUse::kSizeMismatch}) {
    tp.importance_use = use;
    EXPECT_EQ(tensor_search(tp, Search::kImq), Search::kImq) << int(use);
    EXPECT_EQ(tensor_search(tp, Search::kReference), Search::kReference) << int(use);
  }
  tp.importance_use = ImportanceUse::kMissing;
  EXPECT_EQ(tensor_search(tp, Search::kImq), Search::kReference);
  EXPECT_EQ(tensor_search(tp, Search::kReference), Search::kReference);
}

// A GGUF imatrix with an expert that never saw a token: its slot becomes neutral 1.0.
TEST(Importance, ZeroCountSlotIsNeutral) {
  TempDir d;
  gguf::Writer w;
  w.set("general.type", gguf::Value::str("imatrix"));
  w.set("imatrix.datasets", gguf::Value::string_array({"calib.txt"}));
  w.set("imatrix.chunk_count", gguf::Value::u32(3));
  w.set("imatrix.chunk_size", gguf::Value::u32(512));
  const float sums[6] = {2, 4, 6, 8, 10, 12}, counts[3] = {2, 0, 4};
  const int64_t ne_s[2] = {2, 3}, ne_c[2] = {1, 3};
  auto bytes = [](const float* p, size_t n) {
    return std::vector<uint8_t>(reinterpret_cast<const uint8_t*>(p), reinterpret_cast<const uint8_t*>(p + n));
  };
  w.add_tensor("blk.0.ffn_up_exps.weight.in_sum2", GgmlType::F32, ne_s, bytes(sums, 6));
  w.add_tensor("blk.0.ffn_up_exps.weight.counts", GgmlType::F32, ne_c, bytes(counts, 3));
  w.write(d.file("i.gguf"));
  ImportanceData im = load_importance(d.file("i.gguf"));
  ASSERT_EQ(im.entries.size(), 1u);
  EXPECT_EQ(im.entries.at("blk.0.ffn_up_exps.weight"), (std::vector<float>{1, 2, 1, 1, 2.5f, 3}));
  EXPECT_EQ(im.chunk_count, 3u);
  EXPECT_EQ(im.datasets, std::vector<std::string>{"calib.txt"});
  filter_importance(im, {}, {"ffn_up"});
  EXPECT_TRUE(im.entries.empty());
}

TEST(Importance, GgufWithoutMetadataIsRefused) {
  TempDir d;
  gguf::Writer w;
  const float one = 1;
  const int64_t ne[1] = {1};
  std::vector<uint8_t> b(4);
  std::memcpy(b.data(), &one, 4);
  w.add_tensor("a.weight.in_sum2", GgmlType::F32, ne, b);
  w.add_tensor("a.weight.counts", GgmlType::F32, ne, b);
  w.write(d.file("i.gguf"));
  EXPECT_THROW(load_importance(d.file("i.gguf")), Error);
}

}  // namespace
}  // namespace imq::test
