// Greedy generation reproduces llama-completion's token ids (reference/*/gen-*.txt), and the
// sampler's basic contracts.
#include <gtest/gtest.h>

#include <regex>
#include <set>

#include "common/llama_reference.h"
#include "imq/eval.h"
#include "imq/gguf.h"
#include "imq/model.h"
#include "imq/tokenizer.h"

namespace imq {
namespace {

std::vector<int32_t> ids_after(const std::string& text, const std::string& label) {
  const size_t at = text.find(label);
  if (at == std::string::npos) return {};
  const size_t open = text.find('[', at), close = text.find(']', open);
  std::vector<int32_t> ids;
  std::string list = text.substr(open + 1, close - open - 1);
  std::regex num(R"(\d+)");
  for (auto it = std::sregex_iterator(list.begin(), list.end(), num); it != std::sregex_iterator(); ++it)
    ids.push_back(std::stoi(it->str()));
  return ids;
}

class ReferenceGeneration : public ::testing::TestWithParam<const char*> {};

TEST_P(ReferenceGeneration, GreedyTokensEqualLlamaCompletion) {
  IMQ_NEED_SHARED(path, std::string("reference/") + GetParam());
  const std::string text = test::read_all(path);
  // "# command: llama-completion -m MODEL -p "PROMPT" -n N --temp 0 ..."
  std::smatch m;
  const std::regex cmd(R"re(# command: llama-completion -m (\S+) -p "([^"]*)" -n (\d+) --temp 0 )re");
  ASSERT_TRUE(std::regex_search(text, m, cmd));
  const std::string model_path = (test::shared_root() / m[1].str()).string();
  const std::string prompt = m[2];
  const int n = std::stoi(m[3]);
  const auto want_prompt = ids_after(text, "# prompt token ids:");
  const auto want = ids_after(text, "# generated token ids");
  ASSERT_EQ(int(want.size()), n);

  auto model = model::Model::load(model_path);
  auto tok = load_tokenizer(model->file());
  const auto ids = tok->encode(prompt, true, true);
  ASSERT_EQ(ids, want_prompt);
  model::SessionOptions so;
  so.n_ctx = int64_t(ids.size()) + n, so.n_ubatch = 512, so.n_threads = 2;
  model::Session session(*model, so);
  eval::GenerateOptions g;
  g.n_predict = n;
  g.sampling.temp = 0;
  g.banned = {tok->eos()};  // llama-completion's log: "added </s> logit bias = -inf"
  EXPECT_EQ(eval::generate(session, ids, g), want);
}

INSTANTIATE_TEST_SUITE_P(Models, ReferenceGeneration,
                         ::testing::Values("stories260K/gen-stories260K.txt",
                                           "dense-spm4k/gen-dense-spm4k.txt",
                                           "moe-gpt2bpe/gen-moe-gpt2bpe.txt"));

TEST(Sampler, GreedyTakesTheFirstMaximum) {
  eval::SamplingOptions o;
  o.temp = 0;
  eval::Sampler s(o);
  const std::vector<float> l = {0.5f, 2.0f, -1.0f, 2.0f};
  EXPECT_EQ(s.sample(l), 1);
}

TEST(Sampler, TopKLimitsTheCandidatesAndSeedsRepeat) {
  eval::SamplingOptions o;
  o.temp = 1.5f, o.top_k = 2, o.top_p = 1.0f, o.seed = 42;
  const std::vector<float> l = {0.0f, 3.0f, 1.0f, 2.9f, -2.0f};
  eval::Sampler a(o), b(o);
  std::set<int32_t> seen;
  std::vector<int32_t> da, db;
  for (int i = 0; i < 200; ++i) {
    da.push_back(a.sample(l));
    db.push_back(b.sample(l));
    seen.insert(da.back());
  }
  EXPECT_EQ(da, db);
  EXPECT_EQ(seen, (std::set<int32_t>{1, 3}));
}

TEST(Sampler, TopPKeepsTheSmallestNucleus) {
  eval::SamplingOptions o;
  o.temp = 1.0f, o.top_k = 0, o.top_p = 0.5f, o.seed = 1;
  eval::Sampler s(o);
  const std::vector<float> l = {0.0f, 5.0f, 0.0f, 0.0f};  // p(1) ~ 0.98 >= 0.5
  for (int i = 0; i < 50; ++i) EXPECT_EQ(s.sample(l), 1);
}

}  // namespace
}  // namespace imq
