// quantize_compensated on synthetic models (no ../shared): the output has llama-quantize's
// format exactly (metadata, types, sizes, offsets) with other block values, it loads and
// evaluates, it is closer to the unquantized model on the calibration text than plain
// rounding, MoE experts without enough routed tokens fall back and say so, a cancelled or
// failed run leaves nothing behind.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "imq/error.h"
#include "imq/gguf.h"
#include "gptq/embedding.h"
#include "imq/gptq.h"
#include "imq/model.h"
#include "imq/quantize.h"
#include "imq/tokenizer.h"
#include "model/synth_util.h"
#include "test_util.h"

namespace imq::test {
namespace {

std::string synth(const TempDir& d, bool moe) {
  model::SynthOptions o;
  o.n_embd = 256, o.n_layer = 2, o.n_head = 4, o.n_head_kv = 2, o.n_ff = 256, o.n_vocab = 300;
  o.moe = moe, o.n_expert = 4, o.n_expert_used = 1, o.seed = 17;
  return write_synth(d, o, moe ? "moe.gguf" : "dense.gguf");
}

std::string text(size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += "a calibration sentence number " + std::to_string(i * 7919 % 1000) + " of many. ";
  return s;
}

gptq::Options options(int64_t n_ctx, std::vector<std::string>* log = nullptr) {
  gptq::Options o;
  o.quant.ftype = quantize::FType::Q4_K_M;
  o.text_name = "calib.txt";
  o.n_ctx = n_ctx;
  o.n_threads = 2;
  if (log) o.log = [log](const std::string& s) { log->push_back(s); };
  return o;
}

// Logits of the model at `path` on the first n_ctx tokens of `t`.
std::vector<float> logits(const std::string& path, const std::string& t, int64_t n_ctx) {
  auto m = model::Model::load(path);
  auto tok = load_tokenizer(m->file());
  auto ids = tok->encode(t, true, false);
  ids.resize(size_t(n_ctx));
  model::SessionOptions so;
  so.n_ctx = n_ctx, so.n_ubatch = n_ctx, so.n_threads = 2, so.ggml_rounding = false;
  model::Session s(*m, so);
  std::vector<float> out(size_t(n_ctx * m->config().n_vocab));
  s.decode(ids, 0, out);
  return out;
}

double mse(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return s / double(a.size());
}

TEST(Compensate, SameFormatOtherValuesCloserOutput) {
  TempDir d;
  const std::string in = synth(d, false), calib = text(200);
  const std::string plain = d.file("plain.gguf"), comp = d.file("comp.gguf");
  std::vector<uint8_t> embd;  // token_embd rounded plainly with its consumers' importance
  {
    auto f = gguf::File::open(in);
    quantize::Options qo;
    qo.ftype = quantize::FType::Q4_K_M;
    const auto plan = quantize::make_plan(f, qo);
    quantize::write_quantized(f, plan, plain, 2);
    for (quantize::TensorPlan tp : plan.tensors) {
      if (tp.name != "token_embd.weight") continue;
      tp.importance = gptq::embedding_importance(f, 256, 2);
      ASSERT_EQ(tp.importance.size(), 256u);
      tp.importance_use = quantize::ImportanceUse::kUsed;
      embd = quantize::quantize_tensor(f, tp, tp.dst_type, plan.search, 2);
    }
  }
  gptq::Summary sum;
  std::vector<std::string> log;
  gptq::quantize_compensated(in, calib, comp, options(128, &log), &sum);
  EXPECT_TRUE(std::any_of(log.begin(), log.end(), [](const std::string& l) {
    return l.starts_with("token_embd.weight: rounded with importance");
  }));
  EXPECT_GT(sum.compensated, 0u);
  EXPECT_EQ(sum.calib_tokens % 128, 0);

  auto a = gguf::File::open(plain), b = gguf::File::open(comp);
  EXPECT_EQ(std::filesystem::file_size(plain), std::filesystem::file_size(comp));
  EXPECT_EQ(a.data_offset(), b.data_offset());
  EXPECT_EQ(a.alignment(), b.alignment());
  ASSERT_EQ(a.kvs().size(), b.kvs().size());
  for (size_t i = 0; i < a.kvs().size(); ++i) EXPECT_EQ(a.kvs()[i].key, b.kvs()[i].key);
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  int differ = 0;
  for (size_t i = 0; i < a.tensors().size(); ++i) {
    const auto &ta = a.tensors()[i], &tb = b.tensors()[i];
    EXPECT_EQ(ta.name, tb.name);
    EXPECT_EQ(ta.type, tb.type) << ta.name;
    EXPECT_EQ(ta.offset, tb.offset) << ta.name;
    EXPECT_EQ(ta.n_bytes, tb.n_bytes) << ta.name;
    const auto da = a.tensor_data(ta), db = b.tensor_data(tb);
    const bool same = std::equal(da.begin(), da.end(), db.begin(), db.end());
    if (ta.name.starts_with("blk.") && ta.n_dims == 2) differ += !same;
    if (ta.n_dims == 1) {
      EXPECT_TRUE(same) << ta.name << ": a copy";
    }
    if (ta.name == "token_embd.weight") {
      EXPECT_TRUE(std::equal(db.begin(), db.end(), embd.begin(), embd.end())) << "a lookup: rounded plainly";
    }
  }
  EXPECT_GE(differ, 12) << "every layer weight has its own values";

  // On the text it was calibrated on, the compensated model is closer to the original.
  const auto ref = logits(in, calib, 128), lp = logits(plain, calib, 128), lc = logits(comp, calib, 128);
  for (float v : lc) ASSERT_TRUE(std::isfinite(v));
  EXPECT_LT(mse(ref, lc), mse(ref, lp));
}

TEST(Compensate, ExpertsWithoutTokensFallBack) {
  TempDir d;
  const std::string in = synth(d, true);
  std::vector<std::string> log;
  gptq::Options o = options(32, &log);
  o.n_chunks = 1;
  o.min_tokens = 12;  // 32 tokens over 4 experts, one each: some expert gets fewer
  gptq::Summary sum;
  gptq::quantize_compensated(in, text(20), d.file("out.gguf"), o, &sum);
  EXPECT_GT(sum.plain, 0u);
  EXPECT_GT(sum.compensated, 0u);
  bool said = false;
  for (const auto& l : log) said |= l.find("plain rounding (expert") != std::string::npos;
  EXPECT_TRUE(said);
  auto m = model::Model::load(d.file("out.gguf"));
  EXPECT_EQ(m->config().n_expert, 4);
}

// The thread count changes no byte, with ffn_down wide enough (n_ff > 2 n_embd) that its
// correction is accumulated as W G directly (hessian.h).
TEST(Compensate, SameBytesForAnyThreadCount) {
  TempDir d;
  model::SynthOptions so;
  so.n_embd = 128, so.n_layer = 2, so.n_head = 4, so.n_head_kv = 2, so.n_ff = 384, so.n_vocab = 300;
  so.seed = 23;
  const std::string in = write_synth(d, so, "wide.gguf");
  std::vector<std::string> outs;
  for (int threads : {1, 3}) {
    gptq::Options o = options(32);
    o.quant.ftype = quantize::FType::Q4_0;
    o.n_threads = threads;
    o.n_chunks = 4;
    const std::string out = d.file("t" + std::to_string(threads) + ".gguf");
    gptq::Summary sum;
    gptq::quantize_compensated(in, text(60), out, o, &sum);
    EXPECT_GT(sum.compensated, 0u);
    outs.push_back(read_all(out));
  }
  EXPECT_EQ(outs[0], outs[1]);
}

TEST(Compensate, CancelledOrFailedLeavesNothing) {
  TempDir d;
  const std::string in = synth(d, false), out = d.file("out.gguf");
  gptq::Options o = options(64);
  int polls = 0;
  o.cancelled = [&] { return ++polls > 5; };
  EXPECT_THROW(gptq::quantize_compensated(in, text(100), out, o), Error);
  o.cancelled = nullptr;
  try {
    gptq::quantize_compensated(in, "too short", out, o);
    FAIL() << "a text shorter than one chunk";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("calib.txt"), std::string::npos) << e.what();
  }
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(d.path())) files += e.path() != in;
  EXPECT_EQ(files, 0u) << "no output and no temporary file";
}

}  // namespace
}  // namespace imq::test
