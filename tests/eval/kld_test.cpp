// KL divergence: llama.cpp's base logits file is read (and ours has its layout), and the
// statistics block matches llama-perplexity's.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/llama_reference.h"
#include "imq/eval.h"
#include "imq/error.h"
#include "imq/model.h"
#include "imq/tokenizer.h"
#include "test_util.h"

namespace imq {
namespace {

const char* kBaseLog = "reference/stories260K/kld-base-f32-tinystories-c128.log";
const char* kBaseFile = "reference/stories260K/kld-base-f32-tinystories-c128.kld";

// Our --kl-divergence-base file for the run that made llama.cpp's: same size, header and
// tokens; decoded log-probabilities close. They are not bit-equal: llama.cpp keeps K and V in
// F16 and its flash attention rounds Q and the V accumulation to F16, which moves log-probs by
// ~0.003 on average (up to ~0.05 for unlikely tokens) on this tiny model.
TEST(KlDivergence, BaseFileMatchesLlamaCpps) {
  IMQ_NEED_SHARED(ref, kBaseFile);
  IMQ_NEED_SHARED(log, kBaseLog);
  const auto cmd = test::reference_command(kBaseLog);
  ASSERT_FALSE(cmd.empty());
  test::TempDir d;
  auto words = cmd;
  for (size_t i = 0; i + 1 < words.size(); ++i)
    if (words[i] == "--kl-divergence-base") words[i + 1] = d.file("base.kld");
  std::string args;
  for (size_t i = 1; i < words.size(); ++i) {
    const bool path = words[i - 1] == "-m" || words[i - 1] == "-f";
    args += " " + (path ? (test::shared_root() / words[i]).string() : words[i]);
  }
  const auto r = test::run_imq("perplexity" + args);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NEAR(test::final_estimate(r.out).ppl, test::final_estimate(test::read_all(log)).ppl, 1e-3 * 5.2);

  ASSERT_EQ(std::filesystem::file_size(d.file("base.kld")), std::filesystem::file_size(ref));
  auto ours = eval::LogitsFile::open(d.file("base.kld"));
  auto theirs = eval::LogitsFile::open(ref);
  ASSERT_EQ(ours->n_ctx(), theirs->n_ctx());
  ASSERT_EQ(ours->n_vocab(), theirs->n_vocab());
  ASSERT_EQ(ours->n_chunk(), theirs->n_chunk());
  ASSERT_TRUE(std::equal(ours->tokens().begin(), ours->tokens().end(), theirs->tokens().begin()));
  const int64_t n_ctx = ours->n_ctx(), nv = 2 * ((ours->n_vocab() + 1) / 2) + 4;
  double max_diff = 0, sum_diff = 0;
  int64_t n_diff = 0;
  for (int32_t c = 0; c < ours->n_chunk(); ++c)
    for (int64_t p = 0; p < n_ctx - 1 - n_ctx / 2; ++p) {
      const uint16_t* a = ours->chunk(c) + p * nv;
      const uint16_t* b = theirs->chunk(c) + p * nv;
      float sa, ma, sb, mb;
      std::memcpy(&sa, a, 4), std::memcpy(&ma, a + 2, 4), std::memcpy(&sb, b, 4), std::memcpy(&mb, b + 2, 4);
      for (int64_t i = 0; i < ours->n_vocab(); ++i) {
        const double la = sa * a[4 + i] + ma, lb = sb * b[4 + i] + mb;
        if (la > -15 && lb > -15) {
          max_diff = std::max(max_diff, std::abs(la - lb));
          sum_diff += std::abs(la - lb);
          ++n_diff;
        }
      }
    }
  EXPECT_LT(max_diff, 0.1) << "largest difference of a decoded log-probability";
  EXPECT_LT(sum_diff / double(n_diff), 0.006) << "mean difference of a decoded log-probability";
}

// The F16 model against llama.cpp's F32 base file: PPL(base) comes from the file alone and
// must equal what llama-perplexity printed; the F16 model is nearly identical to the base.
TEST(KlDivergence, F16AgainstLlamaBaseFile) {
  IMQ_NEED_SHARED(ref, kBaseFile);
  IMQ_NEED_SHARED(model, "models/stories260K-f16.gguf");
  IMQ_NEED_SHARED(qlog, "reference/stories260K/kld-q-Q4_K_M-imat-tinystories-c128.log");
  const auto r = test::run_imq("perplexity -m " + model + " -c 128 --chunks 20 -t 2 --kl-divergence-base " +
                               ref + " --kl-divergence");
  ASSERT_EQ(r.rc, 0) << r.err;
  const auto got = test::kld_statistics(r.out);
  const auto want = test::kld_statistics(test::read_all(qlog));
  ASSERT_TRUE(want.count("Mean PPL(base)"));
  ASSERT_TRUE(got.count("Mean PPL(base)")) << r.out;
  EXPECT_NEAR(got.at("Mean PPL(base)"), want.at("Mean PPL(base)"), 1e-5 * want.at("Mean PPL(base)"));
  EXPECT_NEAR(got.at("Mean PPL(Q)"), 5.1821, 2e-3 * 5.1821);  // llama-perplexity's F16 estimate
  EXPECT_LT(got.at("Mean    KLD"), 1e-4);
  EXPECT_GT(got.at("Same top p"), 99.0);
  EXPECT_EQ(test::kld_table(r.out).size(), 20u);
}

}  // namespace
}  // namespace imq

namespace imq {
namespace {

// A one-layer synthetic model (odd vocabulary of 301) and 60 lines of text to evaluate it on.
std::pair<std::string, std::string> synth_model_and_text(const test::TempDir& d) {
  model::SynthOptions o;
  o.n_embd = 32, o.n_layer = 1, o.n_head = 2, o.n_head_kv = 1, o.n_ff = 48, o.n_vocab = 301;
  model::write_synthetic_model(o, d.file("m.gguf"));
  std::ofstream f(d.file("t.txt"));
  for (int i = 0; i < 60; ++i) f << "the little girl wore a red riding cloak in the village " << i << "\n";
  return {d.file("m.gguf"), d.file("t.txt")};
}

// Without ../shared: a model against its own base logits has KLD 0 and the same top token,
// and LogitsFile::compute gives the base file's records in memory.
TEST(KlDivergence, ModelAgainstItselfOnSyntheticModel) {
  test::TempDir d;
  const auto [model, text] = synth_model_and_text(d);
  const auto base = d.file("base.kld");
  auto r = test::run_imq("perplexity -m " + model + " -f " + text + " -c 64 --chunks 4 -t 2 --kl-divergence-base " + base);
  ASSERT_EQ(r.rc, 0) << r.err;
  const double ppl = test::final_estimate(r.out).ppl;
  auto f = eval::LogitsFile::open(base);
  EXPECT_EQ(f->n_ctx(), 64);
  EXPECT_EQ(f->n_vocab(), 301);  // odd: each record is padded to an even count
  EXPECT_EQ(f->n_chunk(), 4);
  EXPECT_EQ(std::filesystem::file_size(base), 20u + 4u * 64 * 4 + 4u * 31 * (302 + 4) * 2);
  r = test::run_imq("perplexity -m " + model + " -c 64 -t 1 --kl-divergence-base " + base + " --kl-divergence");
  ASSERT_EQ(r.rc, 0) << r.err;
  const auto s = test::kld_statistics(r.out);
  ASSERT_TRUE(s.count("Mean    KLD")) << r.out;
  EXPECT_NEAR(s.at("Mean    KLD"), 0.0, 2e-6);
  EXPECT_EQ(s.at("Same top p"), 100.0);
  EXPECT_NEAR(s.at("Mean PPL(Q)"), ppl, 1e-3 * ppl);
  EXPECT_NEAR(s.at("Mean PPL(base)"), ppl, 2e-3 * ppl);
  EXPECT_EQ(test::kld_table(r.out).size(), 4u);

  // LogitsFile::compute holds what the file holds, record for record, without the file.
  auto m = model::Model::load(model);
  auto tok = load_tokenizer(m->file());
  std::string t = test::read_all(text);
  t.pop_back();  // the CLI drops one trailing newline, as llama.cpp does
  model::SessionOptions so;
  so.n_ctx = 64, so.n_threads = 2;
  model::Session session(*m, so);
  eval::ChunkOptions co;
  co.n_ctx = 64, co.n_chunks = 4, co.bos = tok->add_bos() ? tok->bos() : -1;
  const auto computed = eval::LogitsFile::compute(session, tok->encode(t, true, false), co);
  ASSERT_EQ(computed->n_ctx(), 64);
  ASSERT_EQ(computed->n_vocab(), 301);
  ASSERT_EQ(computed->n_chunk(), 4);
  EXPECT_TRUE(std::equal(computed->tokens().begin(), computed->tokens().end(), f->tokens().begin()));
  for (int32_t c = 0; c < 4; ++c)
    EXPECT_EQ(std::memcmp(computed->chunk(c), f->chunk(c), size_t(31 * (302 + 4)) * 2), 0) << "chunk " << c;
  const auto self = eval::kl_divergence(session, *computed, co).totals;
  EXPECT_EQ(self.count, 4 * 31);
  EXPECT_NEAR(self.sum_kld / double(self.count), 0.0, 2e-6);
}

// The chunk loop imatrix collection uses: all logits requested, same scores, logits from 0.
TEST(Perplexity, AllLogitsGivesTheSameScores) {
  test::TempDir d;
  const auto path = d.file("m.gguf");
  model::SynthOptions o;
  o.n_embd = 32, o.n_layer = 2, o.n_head = 2, o.n_head_kv = 2, o.n_ff = 48;
  model::write_synthetic_model(o, path);
  auto m = model::Model::load(path);
  model::SessionOptions so;
  so.n_ctx = 32, so.n_ubatch = 32, so.n_threads = 2;
  model::Session s(*m, so);
  std::vector<int32_t> tokens(100);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = int32_t((i * 37 + 11) % 320);
  eval::ChunkOptions co;
  co.n_ctx = 32, co.bos = 1;
  std::vector<int64_t> from;
  const auto a = eval::perplexity(s, tokens, co, [&](const eval::ChunkView& v) { from.push_back(v.logits_from); });
  co.all_logits = true;
  const auto b = eval::perplexity(s, tokens, co, [&](const eval::ChunkView& v) {
    from.push_back(v.logits_from);
    EXPECT_EQ(v.first, 16);
    EXPECT_EQ(v.tokens[0], tokens[size_t(v.index * 32)]);  // as given, before BOS replacement
  });
  EXPECT_EQ(a.count, 3 * 15);
  EXPECT_EQ(b.count, a.count);
  EXPECT_NEAR(a.sum, b.sum, 1e-4 * a.sum);
  EXPECT_EQ(from, (std::vector<int64_t>{16, 16, 16, 0, 0, 0}));
  EXPECT_THROW(eval::chunk_count(63, co), Error);
  EXPECT_EQ(eval::chunk_count(64, co), 2);
}

// llama-perplexity's batches: n_batch / n_ctx chunks each, their micro-batches split evenly.
TEST(Perplexity, MicroBatchesAreLlamaPerplexitys) {
  eval::ChunkOptions co;
  EXPECT_EQ(eval::micro_batch_rows(co, 0, 20), 0);  // not asked: the session's own
  co.n_ctx = 128, co.n_batch = 2048, co.n_ubatch = 512;
  for (int64_t i : {0, 7, 15}) EXPECT_EQ(eval::micro_batch_rows(co, i, 20), 32) << i;  // 16 chunks
  for (int64_t i : {16, 19}) EXPECT_EQ(eval::micro_batch_rows(co, i, 20), 128) << i;   // the last 4
  EXPECT_EQ(eval::micro_batch_rows(co, 16, 17), 512);  // a batch of one chunk
  co.n_ctx = 512;
  EXPECT_EQ(eval::micro_batch_rows(co, 0, 8), 128);
  co.n_ctx = 4096;  // a chunk longer than a batch: micro-batches of n_ubatch
  EXPECT_EQ(eval::micro_batch_rows(co, 0, 2), 512);
  co.n_ctx = 128, co.n_ubatch = 8;  // never below one row
  EXPECT_EQ(eval::micro_batch_rows(co, 0, 16), 1);
}

}  // namespace
}  // namespace imq
