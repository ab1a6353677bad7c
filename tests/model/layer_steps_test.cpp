// Session::forward_layer with a stop and Session::resume_layer: a dense layer taken in steps
// (stop at attn_output, resume to ffn_gate, to ffn_down, to the end) gives the bits of one
// uninterrupted pass, with and without llama.cpp's rounding; a stop leaves x as the residual
// stream at that point; bad calls are one-line errors. Error-compensated quantization
// (src/gptq) relies on it to compute every product of a layer once.
#include <gtest/gtest.h>

#include <string>

#include "imq/error.h"
#include "imq/model.h"
#include "imq/observer.h"
#include "model/synth_util.h"
#include "test_util.h"

namespace imq::test {
namespace {

using Stage = model::Session::LayerStage;

// Keeps the input of one weight.
struct Keep : MatmulObserver {
  std::string weight;
  std::vector<float> x;
  void on_matmul(const MatmulEvent& e) override {
    if (e.expert < 0 && e.weight == weight) x.assign(e.x, e.x + e.n_rows * e.ne0);
  }
};

std::vector<float> hidden(model::Session& s, int64_t n, int64_t d) {
  std::vector<int32_t> tokens(static_cast<size_t>(n));
  for (int64_t t = 0; t < n; ++t) tokens[size_t(t)] = int32_t((t * 37 + 5) % 300);
  std::vector<float> x(size_t(n * d));
  s.embed(tokens, x);
  return x;
}

TEST(LayerSteps, StepsGiveTheBitsOfOnePass) {
  TempDir dir;
  const std::string path = write_synth(dir, synth_dense(), "m.gguf");
  auto m = model::Model::load(path);
  const int64_t n = 24, d = m->config().n_embd;
  for (bool rounding : {false, true}) {
    model::SessionOptions so;
    so.n_ctx = n, so.n_ubatch = n, so.n_threads = 2, so.ggml_rounding = rounding;
    model::Session s(*m, so);
    const std::vector<float> x0 = hidden(s, n, d);
    for (int64_t il = 0; il < m->config().n_layer; ++il) {
      const std::string p = "blk." + std::to_string(il) + ".";
      std::vector<float> whole = x0, x = x0;
      s.forward_layer(il, whole);

      Keep keep;
      s.set_observer(&keep);
      keep.weight = p + "attn_output.weight";
      s.forward_layer(il, x, keep.weight);
      EXPECT_EQ(x, x0) << "a stop before attn_output leaves the layer's input";
      std::vector<float> in = keep.x;
      keep.weight = p + "ffn_gate.weight";
      EXPECT_TRUE(s.resume_layer(il, Stage::kAttnOutput, x, in, keep.weight));
      EXPECT_NE(x, x0) << "the residual stream after the attention";
      in = keep.x;
      keep.weight = p + "ffn_down.weight";
      const std::vector<float> after_attention = x;
      EXPECT_TRUE(s.resume_layer(il, Stage::kFfnGate, x, in, keep.weight));
      EXPECT_EQ(x, after_attention);
      in = keep.x;
      EXPECT_FALSE(s.resume_layer(il, Stage::kFfnDown, x, in));
      s.set_observer(nullptr);
      EXPECT_EQ(x, whole) << "layer " << il << (rounding ? " with" : " without") << " rounding";
    }
  }
}

TEST(LayerSteps, BadCallsAreOneLineErrors) {
  TempDir dir;
  auto dense = model::Model::load(write_synth(dir, synth_dense(), "d.gguf"));
  model::SessionOptions so;
  so.n_ctx = 16, so.n_ubatch = 16, so.n_threads = 1;
  model::Session s(*dense, so);
  const int64_t d = dense->config().n_embd;
  std::vector<float> x(size_t(8 * d)), in(size_t(8 * d));
  EXPECT_THROW(s.resume_layer(0, Stage::kFfnDown, x, in), Error);  // rows of n_ff expected
  EXPECT_THROW(s.resume_layer(7, Stage::kFfnGate, x, in), Error);  // no such layer
  std::vector<float> long_x(size_t(32 * d)), long_in(size_t(32 * d));
  EXPECT_THROW(s.resume_layer(0, Stage::kFfnGate, long_x, long_in), Error);  // > one micro-batch
  auto moe = model::Model::load(write_synth(dir, synth_moe(), "moe.gguf"));
  model::Session sm(*moe, so);
  EXPECT_THROW(sm.resume_layer(0, Stage::kFfnGate, x, in), Error);
}

}  // namespace
}  // namespace imq::test
