// Bad models and inputs fail with one clear line naming the file, key or tensor; NaN logits
// are reported with their chunk.
#include <gtest/gtest.h>

#include <fstream>
#include <functional>

#include "imq/error.h"
#include "imq/gguf.h"
#include "imq/model.h"
#include "synth_util.h"

namespace imq {
namespace {

// Copies a GGUF, letting `edit` change the metadata and `keep`/`data` drop or replace tensors.
void rewrite(const std::string& src, const std::string& dst,
             const std::function<void(gguf::Writer&)>& edit,
             const std::function<bool(const gguf::TensorInfo&)>& keep = {},
             const std::function<std::vector<uint8_t>(const gguf::TensorInfo&, std::span<const uint8_t>)>& data = {}) {
  auto f = gguf::File::open(src);
  gguf::Writer w;
  for (const auto& kv : f.kvs()) w.set(kv.key, kv.value);
  edit(w);
  for (const auto& t : f.tensors()) {
    if (keep && !keep(t)) continue;
    const std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
    if (data)
      w.add_tensor(t.name, t.type, ne, data(t, f.tensor_data(t)));
    else
      w.add_tensor_view(t.name, t.type, ne, f.tensor_data(t));
  }
  w.write(dst);
}

std::string load_error(const std::string& path) {
  try {
    model::Model::load(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

class BadModel : public ::testing::Test {
 protected:
  void SetUp() override { good_ = test::write_synth(dir_, test::synth_dense(), "good.gguf"); }
  test::TempDir dir_;
  std::string good_;
};

TEST_F(BadModel, UnsupportedArchitecture) {
  const auto p = dir_.file("arch.gguf");
  rewrite(good_, p, [](gguf::Writer& w) { w.set("general.architecture", gguf::Value::str("gpt2")); });
  const auto e = load_error(p);
  EXPECT_NE(e.find("unsupported architecture 'gpt2'"), std::string::npos) << e;
  EXPECT_NE(e.find(p), std::string::npos) << e;
}

TEST_F(BadModel, MissingKey) {
  const auto p = dir_.file("key.gguf");
  rewrite(good_, p, [](gguf::Writer& w) { w.remove("llama.block_count"); });
  const auto e = load_error(p);
  EXPECT_NE(e.find("llama.block_count"), std::string::npos) << e;
}

TEST_F(BadModel, MissingTensor) {
  const auto p = dir_.file("tensor.gguf");
  rewrite(good_, p, [](gguf::Writer&) {}, [](const gguf::TensorInfo& t) { return t.name != "blk.1.ffn_up.weight"; });
  const auto e = load_error(p);
  EXPECT_NE(e.find("missing tensor blk.1.ffn_up.weight"), std::string::npos) << e;
}

TEST_F(BadModel, ShapeContradictsHyperparameters) {
  const auto p = dir_.file("shape.gguf");
  rewrite(good_, p, [](gguf::Writer& w) { w.set("llama.feed_forward_length", gguf::Value::u32(100)); });
  const auto e = load_error(p);
  EXPECT_NE(e.find("blk.0.ffn_gate.weight has shape [64, 96], expected [64, 100]"), std::string::npos) << e;
}

TEST_F(BadModel, HeadsDoNotDivide) {
  const auto p = dir_.file("heads.gguf");
  rewrite(good_, p, [](gguf::Writer& w) { w.set("llama.attention.head_count_kv", gguf::Value::u32(3)); });
  const auto e = load_error(p);
  EXPECT_NE(e.find("head_count_kv"), std::string::npos) << e;
}

TEST_F(BadModel, NanLogitsNameTheChunk) {
  const auto p = dir_.file("nan.gguf");
  rewrite(good_, p, [](gguf::Writer&) {}, {}, [](const gguf::TensorInfo& t, std::span<const uint8_t> b) {
    std::vector<uint8_t> v(b.begin(), b.end());
    if (t.name == "output_norm.weight") {
      const float nan = std::numeric_limits<float>::quiet_NaN();
      std::memcpy(v.data(), &nan, 4);
    }
    return v;
  });
  const auto text = dir_.file("text.txt");
  std::ofstream(text) << std::string(2000, 'a') << "\n";
  const auto r = test::run_imq("perplexity -m " + p + " -f " + text + " -c 32 -t 1");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("chunk 1: logits contain NaN"), std::string::npos) << r.err;
}

TEST_F(BadModel, TokenOutsideVocabulary) {
  auto m = model::Model::load(good_);
  model::SessionOptions so;
  so.n_ctx = 8, so.n_threads = 1;
  model::Session s(*m, so);
  std::vector<float> logits(size_t(m->config().n_vocab));
  const int32_t bad[1] = {int32_t(m->config().n_vocab)};
  EXPECT_THROW(s.decode(bad, 0, logits), Error);
  const int32_t ok[8] = {};
  s.decode(ok, 7, logits);
  EXPECT_THROW(s.decode(std::span<const int32_t>(ok, 1), 0, logits), Error);  // context full
}

}  // namespace
}  // namespace imq
