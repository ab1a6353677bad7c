// The forward pass on tiny synthetic models (GQA, tied output, NeoX RoPE, MoE, F16): against
// a naive double-precision reference, batch vs incremental decoding (KV cache), micro-batch
// splitting, thread-count independence, and the matmul observer's events.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <string>

#include "imq/model.h"
#include "imq/observer.h"
#include "reference_forward.h"
#include "synth_util.h"
#include "test_util_impl.h"

namespace imq {
namespace {

std::vector<float> run(const model::Model& m, const std::vector<int32_t>& tokens, int64_t ubatch,
                       int threads, int64_t first_output = 0, MatmulObserver* obs = nullptr,
                       bool ggml_rounding = false) {
  model::SessionOptions so;
  so.n_ctx = 64, so.n_ubatch = ubatch, so.n_threads = threads, so.ggml_rounding = ggml_rounding;
  model::Session s(m, so);
  s.set_observer(obs);
  std::vector<float> logits(size_t((int64_t(tokens.size()) - first_output) * m.config().n_vocab));
  s.decode(tokens, first_output, logits);
  return logits;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double d = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) d = std::max(d, double(std::abs(a[i] - b[i])));
  return d;
}

class SynthForward : public ::testing::TestWithParam<test::SynthCase> {
 protected:
  void SetUp() override {
    path_ = test::write_synth(dir_, GetParam().options);
    model_ = model::Model::load(path_);
    tokens_ = test::random_tokens(40, model_->config().n_vocab, 5);
  }
  test::TempDir dir_;
  std::string path_;
  std::unique_ptr<model::Model> model_;
  std::vector<int32_t> tokens_;
};

TEST_P(SynthForward, MatchesNaiveReference) {
  const auto ref = test::reference_logits(*model_, tokens_);
  const auto got = run(*model_, tokens_, 64, 2);
  const int64_t V = model_->config().n_vocab;
  double worst = 0, scale = 0;
  for (size_t t = 0; t < tokens_.size(); ++t)
    for (int64_t i = 0; i < V; ++i) {
      worst = std::max(worst, std::abs(ref[t][size_t(i)] - double(got[t * size_t(V) + size_t(i)])));
      scale = std::max(scale, std::abs(ref[t][size_t(i)]));
    }
  EXPECT_GT(scale, 0.1);  // logits are not trivially zero
  EXPECT_LT(worst, 2e-4 * std::max(1.0, scale)) << "largest logit difference, scale " << scale;
}

TEST_P(SynthForward, IncrementalDecodingEqualsBatch) {
  const auto batch = run(*model_, tokens_, 64, 2);
  model::SessionOptions so;
  so.n_ctx = 64, so.n_ubatch = 64, so.n_threads = 2, so.ggml_rounding = false;
  model::Session s(*model_, so);
  const size_t V = size_t(model_->config().n_vocab);
  std::vector<float> one(V), inc;
  for (int32_t t : tokens_) {
    s.decode(std::span<const int32_t>(&t, 1), 0, one);
    inc.insert(inc.end(), one.begin(), one.end());
  }
  EXPECT_EQ(s.n_past(), int64_t(tokens_.size()));
  EXPECT_LT(max_abs_diff(batch, inc), 1e-4);
  // An emptied cache starts over: the first token's logits again.
  s.clear();
  s.decode(std::span<const int32_t>(tokens_.data(), 1), 0, one);
  EXPECT_LT(max_abs_diff(one, std::vector<float>(batch.begin(), batch.begin() + ptrdiff_t(V))), 1e-4);
}

TEST_P(SynthForward, MicroBatchesAndOutputRows) {
  const auto whole = run(*model_, tokens_, 64, 2);
  const auto split = run(*model_, tokens_, 7, 2);
  EXPECT_LT(max_abs_diff(whole, split), 1e-4);
  const size_t V = size_t(model_->config().n_vocab);
  const auto tail = run(*model_, tokens_, 16, 2, 30);  // logits of positions 30..39 only
  EXPECT_LT(max_abs_diff(tail, std::vector<float>(whole.begin() + ptrdiff_t(30 * V), whole.end())), 1e-4);
}

// full_last_layer runs every row through the last layer (the observer sees them all) and
// gives the same logits for the rows asked for.
TEST_P(SynthForward, FullLastLayerSameLogitsMoreRows) {
  const int64_t V = model_->config().n_vocab, from = 30;
  const std::string last = "blk." + std::to_string(model_->config().n_layer - 1) + ".ffn_";
  struct Rows : MatmulObserver {
    std::string prefix;
    int64_t rows = 0;
    void on_matmul(const MatmulEvent& e) override {
      if (std::string(e.weight).rfind(prefix, 0) == 0 && e.expert < 0) rows += e.n_rows;
    }
  };
  std::vector<float> got[2];
  int64_t rows[2];
  for (int full = 0; full < 2; ++full) {
    model::SessionOptions so;
    so.n_ctx = 64, so.n_ubatch = 64, so.n_threads = 2, so.ggml_rounding = false;
    so.full_last_layer = full == 1;
    model::Session s(*model_, so);
    Rows obs;
    obs.prefix = last;
    s.set_observer(&obs);
    got[full].resize(size_t((int64_t(tokens_.size()) - from) * V));
    s.decode(tokens_, from, got[full]);
    rows[full] = obs.rows;
  }
  EXPECT_LT(max_abs_diff(got[0], got[1]), 1e-5);
  if (!model_->config().is_moe()) {  // dense: gate, up and down each see the rows
    EXPECT_EQ(rows[0], 3 * (int64_t(tokens_.size()) - from));
    EXPECT_EQ(rows[1], 3 * int64_t(tokens_.size()));
  }
}

// llama.cpp's rounding (on by default) moves the logits by about what half precision costs,
// never more: the float engine above is what it rounds.
TEST_P(SynthForward, GgmlRoundingIsSmallButApplied) {
  const auto exact = run(*model_, tokens_, 64, 2);
  const auto rounded = run(*model_, tokens_, 64, 2, 0, nullptr, true);
  double scale = 0;
  for (float v : exact) scale = std::max(scale, double(std::abs(v)));
  const double diff = max_abs_diff(exact, rounded);
  EXPECT_GT(diff, 0.0);
  EXPECT_LT(diff, 1e-2 * std::max(1.0, scale));
}

TEST_P(SynthForward, ThreadCountDoesNotChangeResults) {
  const auto a = run(*model_, tokens_, 64, 1);
  const auto b = run(*model_, tokens_, 64, 3);
  EXPECT_LT(max_abs_diff(a, b), 1e-5);
}

struct Event {
  std::string weight;
  int64_t ne0, n_rows;
  int32_t expert, n_expert;
  std::vector<float> x;
};

class Recorder : public MatmulObserver {
 public:
  void on_matmul(const MatmulEvent& e) override {
    events.push_back({std::string(e.weight), e.ne0, e.n_rows, e.expert, e.n_expert,
                      std::vector<float>(e.x, e.x + e.ne0 * e.n_rows)});
  }
  std::vector<Event> events;
};

TEST_P(SynthForward, ObserverSeesEveryWeightMatmulOnce) {
  const auto& c = model_->config();
  Recorder rec;
  const int64_t T = 40, n_out = 5, ub = 16;
  run(*model_, tokens_, ub, 2, T - n_out, &rec);
  // Rows each weight saw in total, and per expert.
  std::map<std::string, int64_t> rows;
  std::map<std::pair<std::string, int>, int64_t> expert_rows;
  std::map<std::string, std::vector<float>> router_inputs;
  for (const auto& e : rec.events) {
    ASSERT_EQ(int64_t(e.x.size()), e.ne0 * e.n_rows);
    ASSERT_GT(e.n_rows, 0) << e.weight;
    rows[e.weight] += e.n_rows;
    if (e.expert >= 0) {
      EXPECT_EQ(e.n_expert, c.n_expert) << e.weight;
      EXPECT_LT(e.expert, c.n_expert);
      expert_rows[{e.weight, e.expert}] += e.n_rows;
    } else {
      EXPECT_EQ(e.n_expert, 0);
    }
    if (e.weight.find("attn_q") != std::string::npos)
      for (int64_t r = 0; r < e.n_rows; ++r) {  // RMS-normed with unit weights: mean square ~1
        double ms = 0;
        for (int64_t j = 0; j < e.ne0; ++j) ms += double(e.x[size_t(r * e.ne0 + j)]) * e.x[size_t(r * e.ne0 + j)];
        EXPECT_NEAR(ms / double(e.ne0), 1.0, 1e-2);  // eps = 1e-5 against small inputs
      }
  }
  for (int64_t il = 0; il < c.n_layer; ++il) {
    const std::string p = "blk." + std::to_string(il) + ".";
    const int64_t ffn_rows = il == c.n_layer - 1 ? n_out : T;  // the last FFN runs on output rows
    for (const char* w : {"attn_q", "attn_k", "attn_v", "attn_output"}) EXPECT_EQ(rows[p + w + ".weight"], T) << p + w;
    if (!c.is_moe()) {
      for (const char* w : {"ffn_gate", "ffn_up", "ffn_down"}) EXPECT_EQ(rows[p + w + ".weight"], ffn_rows) << p + w;
    } else {
      EXPECT_EQ(rows[p + "ffn_gate_inp.weight"], ffn_rows);
      for (const char* w : {"ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"})
        EXPECT_EQ(rows[p + w + ".weight"], ffn_rows * c.n_expert_used) << p + w;
      for (int e = 0; e < c.n_expert; ++e) {
        const auto g = std::make_pair(p + "ffn_gate_exps.weight", e);
        const auto d = std::make_pair(p + "ffn_down_exps.weight", e);
        EXPECT_EQ(expert_rows[g], expert_rows[d]);
      }
    }
  }
  EXPECT_EQ(rows["output.weight"] + rows["token_embd.weight"], n_out);
  // Micro-batches of 16: the first layer's q saw 16, 16 and 8 rows, in that order.
  std::vector<int64_t> q_rows;
  for (const auto& e : rec.events)
    if (e.weight == "blk.0.attn_q.weight") q_rows.push_back(e.n_rows);
  EXPECT_EQ(q_rows, (std::vector<int64_t>{16, 16, 8}));
  // Matmuls sharing an input saw the same activations; ne0 is the weight's row length.
  for (size_t i = 0; i + 2 < rec.events.size(); ++i) {
    if (rec.events[i].weight.find("attn_q") != std::string::npos) {
      EXPECT_EQ(rec.events[i].x, rec.events[i + 1].x);
      EXPECT_EQ(rec.events[i].x, rec.events[i + 2].x);
    }
  }
  for (const auto& e : rec.events)
    if (e.weight.find("attn_output") != std::string::npos) {
      EXPECT_EQ(e.ne0, c.n_head * c.head_dim);
    }
}

const test::SynthCase kCases[] = {
    {"dense_gqa", test::synth_dense()},
    {"tied_neox_mqa", test::synth_tied_neox()},
    {"moe", test::synth_moe()},
    {"f16", test::synth_f16()},
    {"moe_f16_tied_top1", test::synth_moe_f16_tied()},
    {"qwen2", test::synth_arch("qwen2")},
    {"qwen3", test::synth_arch("qwen3")},
    {"qwen3moe", test::synth_arch("qwen3moe")},
    {"gemma3", test::synth_arch("gemma3")},
};
INSTANTIATE_TEST_SUITE_P(Synth, SynthForward, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace imq
