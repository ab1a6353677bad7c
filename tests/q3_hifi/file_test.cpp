// Q3_HIFI in files: the version key guarding the type id, `imq quantize ... Q3_HIFI` and
// Q3_HIFI_M on a real model (read back, dequantized), and the engine running the result.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "common/llama_reference.h"
#include "imq/gguf.h"
#include "imq/quant.h"
#include "quant/q3_hifi.h"
#include "quantize/importance.h"
#include "test_util_impl.h"

namespace imq {
namespace {

const char* kModel = "models/dense-spm4k-f32.gguf";
const char* kImatrix = "reference/dense-spm4k/imatrix-calib-c256.gguf";
const char* kWiki = "data/wiki.test.raw";

// A file with one 2 x 256 Q3_HIFI tensor (zero bytes) and the given version key, if any.
std::string write_q3_hifi_file(const test::TempDir& d, const std::optional<gguf::Value>& version) {
  gguf::Writer w;
  w.set("general.architecture", gguf::Value::str("llama"));
  if (version) w.set(std::string(kQ3HifiVersionKey), *version);
  const int64_t ne[2] = {256, 2};
  w.add_tensor("blk.0.attn_v.weight", GgmlType::Q3_HIFI, ne, std::vector<uint8_t>(2 * 134));
  const std::string path = d.file("q3_hifi.gguf");
  w.write(path);
  return path;
}

std::string open_error(const std::string& path) {
  try {
    gguf::File::open(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Q3HifiFile, ReaderNeedsTheVersionKey) {
  test::TempDir d;
  const std::string missing = open_error(write_q3_hifi_file(d, std::nullopt));
  EXPECT_NE(missing.find("blk.0.attn_v.weight"), std::string::npos) << missing;
  EXPECT_NE(missing.find("0x494d5100"), std::string::npos) << missing;
  EXPECT_NE(missing.find("imq.q3_hifi.version"), std::string::npos) << missing;
  EXPECT_NE(missing.find("another tool"), std::string::npos) << missing;

  const std::string future = open_error(write_q3_hifi_file(d, gguf::Value::u32(2)));
  EXPECT_NE(future.find("imq.q3_hifi.version"), std::string::npos) << future;
  EXPECT_NE(future.find("2"), std::string::npos) << future;
  EXPECT_NE(open_error(write_q3_hifi_file(d, gguf::Value::str("1"))), "");

  const std::string path = write_q3_hifi_file(d, gguf::Value::u32(1));
  EXPECT_EQ(open_error(path), "");
  const gguf::File f = gguf::File::open(path);
  EXPECT_EQ(f.tensors().at(0).n_bytes, 2u * 134u);
}

std::vector<float> f32_data(const gguf::File& f, const gguf::TensorInfo& t) {
  auto bytes = f.tensor_data(t);
  std::vector<float> v(bytes.size() / 4);
  std::memcpy(v.data(), bytes.data(), bytes.size());
  return v;
}

std::string quantize_model(const test::TempDir& d, const std::string& model, const std::string& type,
                           const std::string& imatrix, test::RunResult* result = nullptr) {
  const std::string out = d.file(type + (imatrix.empty() ? "-noimat" : "-imat") + ".gguf");
  const auto r = test::run_imq("quantize " + (imatrix.empty() ? "" : "--imatrix " + imatrix + " ") +
                               model + " " + out + " " + type + " 2");
  EXPECT_EQ(r.rc, 0) << r.err;
  if (result) *result = r;
  return out;
}

size_t count(const std::string& s, const std::string& needle) {
  size_t n = 0;
  for (size_t p = s.find(needle); p != std::string::npos; p = s.find(needle, p + 1)) ++n;
  return n;
}

// Every quantized weight is Q3_HIFI (output Q6_K); the bytes are the codec's on the imatrix's
// importance, so the CLI passes each tensor its own importance vector; read back and
// dequantized, each tensor is close to the F32 weights.
TEST(Q3HifiFile, QuantizeReadBackDequantize) {
  IMQ_NEED_SHARED(model, kModel);
  IMQ_NEED_SHARED(imatrix, kImatrix);
  test::TempDir d;
  const std::string out = quantize_model(d, model, "Q3_HIFI", imatrix);
  const gguf::File in = gguf::File::open(model), q = gguf::File::open(out);
  ASSERT_TRUE(q.find(std::string(kQ3HifiVersionKey)));
  EXPECT_EQ(q.find(std::string(kQ3HifiVersionKey))->as_int(), 1);
  EXPECT_EQ(q.find("general.file_type")->as_int(), 2000);
  const auto imp = quantize::load_importance(imatrix);
  const quant::Codec& codec = quant::codec(GgmlType::Q3_HIFI);
  int n_hifi = 0;
  for (const auto& t : q.tensors()) {
    if (t.name == "output.weight") {
      EXPECT_EQ(t.type, GgmlType::Q6_K);
      continue;
    }
    if (t.ne[1] == 1) continue;  // norms stay F32
    ASSERT_EQ(t.type, GgmlType::Q3_HIFI) << t.name;
    ++n_hifi;
    const std::vector<float> x = f32_data(in, in.tensor(t.name));
    const auto it = imp.entries.find(t.name);
    const float* w = it == imp.entries.end() ? nullptr : it->second.data();
    EXPECT_EQ(w == nullptr, t.name == "token_embd.weight") << t.name;
    std::vector<uint8_t> want(size_t(t.n_bytes));
    codec.quantize(x.data(), want.data(), t.ne[1], t.ne[0], w);
    const auto got = q.tensor_data(t);
    ASSERT_EQ(got.size(), want.size());
    EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size()), 0) << t.name;
    std::vector<float> y(x.size());
    codec.dequantize(got.data(), y.data(), int64_t(y.size()));
    double num = 0, den = 0;
    for (size_t i = 0; i < x.size(); ++i) num += (x[i] - y[i]) * (x[i] - y[i]), den += x[i] * x[i];
    EXPECT_LT(std::sqrt(num / den), 0.2) << t.name;  // Q3_K alone: about 0.2 on these weights
  }
  EXPECT_EQ(n_hifi, 1 + 4 * 7);
}

// Without an imatrix it works, and says so once.
TEST(Q3HifiFile, WithoutImatrixWarnsOnce) {
  IMQ_NEED_SHARED(model, kModel);
  test::TempDir d;
  test::RunResult r;
  const std::string out = quantize_model(d, model, "Q3_HIFI", "", &r);
  EXPECT_EQ(count(r.err, "Q3_HIFI without an imatrix"), 1u) << r.err;
  const gguf::File q = gguf::File::open(out);
  EXPECT_EQ(q.tensor("blk.0.ffn_down.weight").type, GgmlType::Q3_HIFI);
  EXPECT_EQ(test::run_imq("info " + out).rc, 0);
}

// Q3_HIFI_M on a dense model (4 layers): layer 0's FFN up (ffn_gate/ffn_up Q4_K, ffn_down
// Q5_K), ffn_down Q3_K in layers 1-3, Q3_K_M's attention (no Q3_HIFI tensor, so no version
// key), and no larger than Q3_K_M. The MoE routing is checked below.
TEST(Q3HifiFile, MixRouting) {
  IMQ_NEED_SHARED(model, kModel);
  IMQ_NEED_SHARED(imatrix, kImatrix);
  test::TempDir d;
  const auto r = test::run_imq("quantize --dry-run --imatrix " + imatrix + " " + model + " " +
                               d.file("m.gguf") + " Q3_HIFI_M");
  ASSERT_EQ(r.rc, 0) << r.err;
  const std::string out = quantize_model(d, model, "Q3_HIFI_M", imatrix);
  const gguf::File q = gguf::File::open(out);
  EXPECT_EQ(q.find("general.file_type")->as_int(), 2001);
  EXPECT_FALSE(q.find(std::string(kQ3HifiVersionKey)));
  const auto type = [&](const std::string& name) { return q.tensor(name).type; };
  for (int l = 0; l < 4; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    for (const char* t : {"attn_q", "attn_k"}) EXPECT_EQ(type(b + t + ".weight"), GgmlType::Q3_K) << b << t;
    EXPECT_EQ(type(b + "attn_v.weight"), l < 2 ? GgmlType::Q5_K : GgmlType::Q4_K) << l;
    EXPECT_EQ(type(b + "attn_output.weight"), GgmlType::Q4_K) << l;
    EXPECT_EQ(type(b + "ffn_down.weight"), l < 1 ? GgmlType::Q5_K : GgmlType::Q3_K) << l;
    EXPECT_EQ(type(b + "ffn_up.weight"), l < 1 ? GgmlType::Q4_K : GgmlType::Q3_K) << l;
    EXPECT_EQ(type(b + "ffn_gate.weight"), l < 1 ? GgmlType::Q4_K : GgmlType::Q3_K) << l;
  }
  EXPECT_EQ(type("token_embd.weight"), GgmlType::Q3_K);
  EXPECT_EQ(type("output.weight"), GgmlType::Q6_K);
  const std::string k_m = quantize_model(d, model, "Q3_K_M", imatrix);
  EXPECT_LE(std::filesystem::file_size(out), std::filesystem::file_size(k_m));
}

// The file size `imq quantize --dry-run` announces, or 0.
uint64_t dry_run_size(const std::string& args) {
  const auto r = test::run_imq("quantize --dry-run " + args);
  EXPECT_EQ(r.rc, 0) << r.err;
  const std::string all = r.out + r.err, key = "output file size = ";
  const size_t p = all.rfind(key);
  EXPECT_NE(p, std::string::npos) << all;
  return p == std::string::npos ? 0 : std::stoull(all.substr(p + key.size()));
}

// On the MoE model Q3_HIFI_M has Q3_HIFI attn_q, attn_v and attn_output, and is no larger
// than Q3_K_M.
TEST(Q3HifiFile, MixNoLargerThanQ3KMOnMoe) {
  IMQ_NEED_SHARED(model, "models/moe-gpt2bpe-f32.gguf");
  IMQ_NEED_SHARED(imatrix, "reference/moe-gpt2bpe/imatrix-calib-c256.gguf");
  test::TempDir d;
  const std::string args = "--imatrix " + imatrix + " " + model + " " + d.file("x.gguf") + " ";
  const auto plan = test::run_imq("quantize --dry-run " + args + "Q3_HIFI_M");
  ASSERT_EQ(plan.rc, 0) << plan.err;
  const std::string listing = plan.out + plan.err;
  for (const char* t : {"blk.2.attn_q.weight", "blk.2.attn_v.weight", "blk.2.attn_output.weight"}) {
    const size_t p = listing.find(t);
    ASSERT_NE(p, std::string::npos) << t << "\n" << listing;
    EXPECT_NE(listing.substr(p, listing.find('\n', p) - p).find("q3_hifi"), std::string::npos) << t;
  }
  const uint64_t hifi_m = dry_run_size(args + "Q3_HIFI_M"), k_m = dry_run_size(args + "Q3_K_M");
  EXPECT_GT(hifi_m, 0u);
  EXPECT_LE(hifi_m, k_m);
  EXPECT_GT(hifi_m, k_m * 95 / 100) << "the mix spends about what Q3_K_M spends";
}

// The engine runs a Q3_HIFI model: perplexity close to the F32 model's (measured: within 5%
// on these two chunks), KL divergence against the F32 model small and below that of the same
// model in plain Q3_K (same imatrix), and greedy generation.
TEST(Q3HifiFile, EngineRunsQ3HifiModel) {
  IMQ_NEED_SHARED(model, kModel);
  IMQ_NEED_SHARED(imatrix, kImatrix);
  IMQ_NEED_SHARED(wiki, kWiki);
  test::TempDir d;
  const std::string out = quantize_model(d, model, "Q3_HIFI", imatrix);
  const std::string base = d.file("base.kld");
  const auto run = [&](const std::string& m, const std::string& extra) {
    const auto r = test::run_imq("perplexity -m " + m + " -f " + wiki + " -c 256 --chunks 2 -t 2 " + extra);
    EXPECT_EQ(r.rc, 0) << r.err;
    return r.out + r.err;
  };
  const double ppl_f = test::final_estimate(run(model, "--kl-divergence-base " + base)).ppl;
  const double ppl_q = test::final_estimate(run(out, "")).ppl;
  ASSERT_GT(ppl_f, 1.0);
  EXPECT_TRUE(std::isfinite(ppl_q));
  EXPECT_GT(ppl_q, ppl_f * 0.97);
  EXPECT_LT(ppl_q, ppl_f * 1.10);

  const auto kld = [&](const std::string& m) {
    const auto stats = test::kld_statistics(run(m, "--kl-divergence-base " + base + " --kl-divergence"));
    EXPECT_TRUE(stats.count("Mean    KLD")) << m;
    return stats.count("Mean    KLD") ? stats.at("Mean    KLD") : -1.0;
  };
  const double kld_hifi = kld(out);
  const double kld_q3k = kld(quantize_model(d, model, "Q3_K_S", imatrix));
  EXPECT_GT(kld_hifi, 0.0);
  EXPECT_LT(kld_hifi, 0.1);
  EXPECT_LT(kld_hifi, kld_q3k);

  const auto g = test::run_imq("generate -m " + out + " -p \"The history of\" -n 12 --temp 0 -t 2");
  ASSERT_EQ(g.rc, 0) << g.err;
  EXPECT_NE(g.out.find("The history of"), std::string::npos) << g.out;
  EXPECT_GT(g.out.size(), std::string("The history of").size() + 8) << g.out;
}

}  // namespace
}  // namespace imq
