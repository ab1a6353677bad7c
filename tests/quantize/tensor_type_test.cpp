// --tensor-type PATTERN=TYPE and --tensor-type-file (llama-quantize's manual overrides): the
// first matching regex replaces the mix's choice, the shape fallback still applies, and bad
// entries are refused with the entry (and the file and line) named.
#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include "imq/error.h"
#include "imq/ggml_types.h"
#include "imq/model.h"
#include "imq/quantize.h"
#include "test_util.h"

namespace imq::test {
namespace {

using namespace imq::quantize;
using G = GgmlType;
constexpr G id(G t) { return t; }

std::string synth(const TempDir& d, int64_t n_embd) {
  model::SynthOptions o;
  o.n_embd = n_embd, o.n_layer = 2, o.n_head = 4, o.n_head_kv = 2, o.n_ff = n_embd * 2;
  const std::string path = d.file("m" + std::to_string(n_embd) + ".gguf");
  model::write_synthetic_model(o, path);
  return path;
}

std::map<std::string, GgmlType> types(const Plan& p) {
  std::map<std::string, GgmlType> out;
  for (const auto& t : p.tensors) out[t.name] = t.dst_type;
  return out;
}

TEST(TensorType, FirstMatchReplacesTheMixRule) {
  TempDir d;
  auto file = gguf::File::open(synth(d, 256));
  Options opt;
  opt.ftype = FType::Q4_K_M;
  const auto mix = types(make_plan(file, opt));
  opt.tensor_types = {parse_tensor_type_override("blk\\.1\\.attn_v=q8_0"),
                      parse_tensor_type_override("attn_v=Q5_K"),
                      parse_tensor_type_override("ffn_(up|gate)=q3_k")};
  const Plan plan = make_plan(file, opt);
  const auto t = types(plan);
  EXPECT_EQ(t.at("blk.1.attn_v.weight"), id(G::Q8_0));
  EXPECT_EQ(t.at("blk.0.attn_v.weight"), id(G::Q5_K));
  for (const char* n : {"blk.0.ffn_up.weight", "blk.1.ffn_gate.weight"}) EXPECT_EQ(t.at(n), id(G::Q3_K)) << n;
  for (const char* n : {"blk.0.attn_q.weight", "blk.1.ffn_down.weight", "output.weight", "token_embd.weight"})
    EXPECT_EQ(t.at(n), mix.at(n)) << n;
  // The plan says which types the user forced (the tuner leaves those alone).
  for (const auto& tp : plan.tensors) {
    const bool manual = tp.name.find("attn_v") != std::string::npos ||
                        tp.name.find("ffn_up") != std::string::npos ||
                        tp.name.find("ffn_gate") != std::string::npos;
    EXPECT_EQ(tp.type_forced, manual) << tp.name;
  }
  Options out = opt;
  out.output_tensor_type = id(G::Q8_0);
  for (const auto& tp : make_plan(file, out).tensors)
    if (tp.name == "output.weight" || tp.name == "token_embd.weight") {
      EXPECT_EQ(tp.type_forced, tp.name == "output.weight") << tp.name;
    }
  // Sizes follow the new types.
  for (const auto& tp : plan.tensors) {
    if (tp.name == "blk.1.attn_v.weight") {
      EXPECT_EQ(tp.dst_bytes, uint64_t(256 / 32 * 34 * tp.ne[1]));
    }
  }
}

TEST(TensorType, ShapeFallbackStillApplies) {
  TempDir d;
  auto file = gguf::File::open(synth(d, 64));  // rows of 64: no K-quant fits
  Options opt;
  opt.ftype = FType::Q4_K_M;
  opt.tensor_types = {parse_tensor_type_override("ffn_up=q4_K")};
  const Plan plan = make_plan(file, opt);
  for (const auto& tp : plan.tensors) {
    if (tp.name == "blk.0.ffn_up.weight") {
      EXPECT_EQ(tp.dst_type, id(G::Q5_0));
      ASSERT_TRUE(tp.fallback_from);
      EXPECT_EQ(*tp.fallback_from, id(G::Q4_K));
    }
  }
  EXPECT_EQ(fitted_type("x", 64, id(G::Q6_K)), id(G::Q8_0));
  EXPECT_EQ(fitted_type("x", 256, id(G::Q6_K)), id(G::Q6_K));
  EXPECT_EQ(fitted_type("x", 48, id(G::Q8_0)), std::nullopt);
}

TEST(TensorType, ParsingAndErrors) {
  const auto o = parse_tensor_type_override("Blk\\.0\\.ATTN_V=Q6_k");
  EXPECT_EQ(o.pattern, "blk\\.0\\.attn_v");  // lower-cased like llama-quantize
  EXPECT_EQ(o.type, id(G::Q6_K));
  auto fails_with = [](const char* s, const char* needle) {
    try {
      parse_tensor_type_override(s);
      ADD_FAILURE() << s << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  fails_with("attn_v", "PATTERN=TYPE");
  fails_with("=q8_0", "missing tensor name");
  fails_with("attn_v=", "missing type");
  fails_with("attn_v=q9_9", "q9_9");
  fails_with("attn_[v=q8_0", "regular expression");
}

TEST(TensorType, FileEntriesCommentsAndLineNumbers) {
  TempDir d;
  {
    std::ofstream f(d.file("ok.txt"));
    f << "# a mix\nattn_v=q6_K ffn_down=q5_K  # two on a line\n\n  output=q8_0\n";
  }
  const auto v = read_tensor_type_file(d.file("ok.txt"));
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0].pattern, "attn_v");
  EXPECT_EQ(v[1].type, id(G::Q5_K));
  EXPECT_EQ(v[2].pattern, "output");
  {
    std::ofstream f(d.file("bad.txt"));
    f << "attn_v=q6_K\nffn_down\n";
  }
  try {
    read_tensor_type_file(d.file("bad.txt"));
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.txt:2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(read_tensor_type_file(d.file("missing.txt")), Error);
}

TEST(TensorType, CommandLine) {
  TempDir d;
  const std::string m = synth(d, 256);
  RunResult r = run_imq("quantize --dry-run --tensor-type attn_q=q8_0 " + m + " " + d.file("o.gguf") + " Q4_K_M");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("blk.0.attn_q.weight"), std::string::npos);
  const auto line = r.out.substr(r.out.find("blk.0.attn_q.weight"));
  EXPECT_NE(line.substr(0, line.find('\n')).find("converting to q8_0"), std::string::npos) << line;
  r = run_imq("quantize --tensor-type attn_q " + m + " " + d.file("o.gguf") + " Q4_K_M");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("PATTERN=TYPE"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace imq::test
