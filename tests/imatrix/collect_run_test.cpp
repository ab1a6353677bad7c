// Collection runs on stories260K: resuming from a save is exact, shards merged equal one run,
// a run killed at random moments leaves a loadable file of whole chunks that resumes to the
// same result, SIGTERM saves and exits, NaN activations stop with the last good chunks saved,
// snapshots, thread counts, and bad arguments.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <random>
#include <thread>

#include <fmt/format.h>

#include "imatrix_test_util.h"
#include "imq/gguf.h"
#include "imq/tokenizer.h"

namespace imq::test {
namespace {

namespace fs = std::filesystem;
using namespace imq::imatrix;

struct Inputs {
  std::string model, text;
};

// "imatrix -m ... -f ... -c 128 -t 2 <extra>".
std::string collect_args(const Inputs& s, const std::string& extra) {
  return fmt::format("imatrix -m {} -f {} -c 128 -t 2 -lv 0 --no-ppl {}", s.model, s.text, extra);
}

void expect_same_entries(const Imatrix& a, const Imatrix& b, double tol = 0) {
  ASSERT_EQ(a.entries.size(), b.entries.size());
  for (const auto& [name, e] : b.entries) {
    ASSERT_TRUE(a.entries.count(name)) << name;
    const Entry& x = a.entries.at(name);
    EXPECT_EQ(x.counts, e.counts) << name;
    if (tol == 0)
      EXPECT_EQ(x.sums, e.sums) << name;
    else
      EXPECT_LT(rel_l2(x.sums, e.sums), tol) << name;
  }
}

// Every count is a whole number of chunks of 128 tokens, the same for all dense entries.
uint32_t whole_chunks(const Imatrix& m) {
  for (const auto& [name, e] : m.entries)
    for (float c : e.counts) EXPECT_EQ(std::fmod(c, 128.0f), 0.0f) << name;
  return m.chunk_count;
}

class CollectRun : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = shared_file("models/stories260K-f32.gguf");
    text_ = shared_file("data/calibration_datav3_small.txt");
    if (model_.empty() || text_.empty()) {
      if (shared_required()) FAIL() << "missing shared stories260K model or calibration text";
      GTEST_SKIP() << "shared data not found";
    }
  }
  Inputs s() const { return {model_, text_}; }
  std::string model_, text_;
  TempDir d_;
};

TEST_F(CollectRun, ResumeIsExactAndShardsMergeToOneRun) {
  ASSERT_EQ(run_imq(collect_args(s(), "--chunks 6 -o " + d_.file("full.gguf"))).rc, 0);
  ASSERT_EQ(run_imq(collect_args(s(), "--chunks 3 -o " + d_.file("part.gguf"))).rc, 0);
  auto r = run_imq(collect_args(s(), "--chunk 3 --chunks 3 --in-file " + d_.file("part.gguf") + " -o " +
                                         d_.file("resumed.gguf")));
  ASSERT_EQ(r.rc, 0) << r.err;
  const Imatrix full = read_gguf(d_.file("full.gguf")), resumed = read_gguf(d_.file("resumed.gguf"));
  EXPECT_EQ(full.chunk_count, 6u);
  EXPECT_EQ(resumed.chunk_count, 6u);
  EXPECT_EQ(resumed.datasets.size(), 2u);  // the input's dataset, then this run's
  expect_same_entries(resumed, full);       // bit for bit

  // Shards of a distributed run, reduced with merge.
  ASSERT_EQ(run_imq(collect_args(s(), "--chunk 3 --chunks 3 -o " + d_.file("shard1.gguf"))).rc, 0);
  r = run_imq("imatrix merge " + d_.file("part.gguf") + " " + d_.file("shard1.gguf") + " -o " + d_.file("merged.gguf"));
  ASSERT_EQ(r.rc, 0) << r.err;
  const Imatrix merged = read_gguf(d_.file("merged.gguf"));
  EXPECT_EQ(merged.chunk_count, 6u);
  expect_same_entries(merged, full, 1e-6);  // float sums added in another order
}

TEST_F(CollectRun, ThreadsAndMicroBatchesChangeNothingBeyondRounding) {
  ASSERT_EQ(run_imq(collect_args(s(), "--chunks 2 -o " + d_.file("a.gguf"))).rc, 0);
  ASSERT_EQ(run_imq(collect_args(s(), "--chunks 2 -o " + d_.file("b.gguf"))).rc, 0);
  EXPECT_EQ(read_all(d_.file("a.gguf")), read_all(d_.file("b.gguf")));  // deterministic
  // The thread count changes no bit: every row is computed the same way whoever computes it.
  ASSERT_EQ(run_imq(collect_args(s(), "--chunks 2 -t 1 -o " + d_.file("t1.gguf"))).rc, 0);
  ASSERT_EQ(run_imq(collect_args(s(), "--chunks 2 -t 3 -o " + d_.file("t3.gguf"))).rc, 0);
  EXPECT_EQ(read_all(d_.file("t1.gguf")), read_all(d_.file("a.gguf")));
  EXPECT_EQ(read_all(d_.file("t3.gguf")), read_all(d_.file("a.gguf")));
  // Other micro-batches on the same attention path (64 rows and more: ggml's tiled flash
  // attention, row by row the same arithmetic) change only the summation order of the float
  // products, and keys and values are rounded to half as llama.cpp's F16 cache rounds them: a
  // last-bit float difference can flip one half rounding. Over a tensor that stays below 3e-4
  // (L2; measured up to 9.8e-5 here). The float engine's own micro-batch invariance (no rounding)
  // is asserted to 1e-4 on logits in tests/model/forward_test.cpp.
  ASSERT_EQ(run_imq(collect_args(s(), "--chunks 2 -ub 64 -b 64 -o " + d_.file("c.gguf"))).rc, 0);
  expect_same_entries(read_gguf(d_.file("c.gguf")), read_gguf(d_.file("a.gguf")), 3e-4);
  // Below 64 rows ggml's flash attention takes its per-row path, which accumulates values in
  // half precision (kernels/ggml_exact.h), as llama.cpp would with such micro-batches: a larger
  // change, below 1e-3 (measured up to 5.4e-4).
  ASSERT_EQ(run_imq(collect_args(s(), "--chunks 2 -ub 32 -b 64 -o " + d_.file("r.gguf"))).rc, 0);
  expect_same_entries(read_gguf(d_.file("r.gguf")), read_gguf(d_.file("a.gguf")), 1e-3);
}

TEST_F(CollectRun, SnapshotsAndFormats) {
  auto r = run_imq(collect_args(s(), "--chunks 4 --output-frequency 3 --save-frequency 2 --process-output -o " +
                                         d_.file("o.gguf")));
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(read_gguf(d_.file("o.gguf.at_2")).chunk_count, 2u);
  EXPECT_EQ(read_gguf(d_.file("o.gguf.at_4")).chunk_count, 4u);
  EXPECT_FALSE(fs::exists(d_.file("o.gguf.at_3")));
  const Imatrix m = read_gguf(d_.file("o.gguf"));
  EXPECT_EQ(m.chunk_count, 4u);
  EXPECT_EQ(m.entries.count("output.weight"), 1u);
  r = run_imq(collect_args(s(), "--chunks 2 --output-format dat -o " + d_.file("o.dat")));
  ASSERT_EQ(r.rc, 0) << r.err;
  ReadOptions ro;
  ro.chunk_size = 128;
  EXPECT_EQ(read_dat(d_.file("o.dat"), ro).chunk_count, 2u);
}

// Starts a collection, kills it after `delay`, returns its exit status.
int run_and_signal(const std::string& args, int sig, std::chrono::milliseconds delay) {
  const std::string cmd = std::string("exec ") + IMQ_BINARY + " " + args + " >/dev/null 2>&1";
  const pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  std::this_thread::sleep_for(delay);
  kill(pid, sig);
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// SIGKILL at random moments: whatever is on disk loads, holds whole chunks only, and resuming
// from it ends bit for bit where an uninterrupted run ends. SIGTERM: saves and exits 143.
TEST_F(CollectRun, KilledRunsResumeToTheSameResult) {
  constexpr int kChunks = 40;
  ASSERT_EQ(run_imq(collect_args(s(), fmt::format("--chunks {} -o {}", kChunks, d_.file("ref.gguf")))).rc, 0);
  const Imatrix ref = read_gguf(d_.file("ref.gguf"));
  std::mt19937 rng(std::random_device{}());
  for (int trial = 0; trial < 5; ++trial) {
    const int sig = trial == 4 ? SIGTERM : SIGKILL;
    // SIGTERM early, so that it usually lands mid-run (a fast machine may still finish first).
    const auto delay = std::chrono::milliseconds(sig == SIGTERM ? 30 + rng() % 60 : 30 + rng() % 500);
    SCOPED_TRACE(fmt::format("trial {}: signal {} after {} ms", trial, sig, delay.count()));
    const std::string out = d_.file(fmt::format("run{}.gguf", trial));
    const int rc = run_and_signal(
        collect_args(s(), fmt::format("--chunks {} --output-frequency 1 -o {}", kChunks, out)), sig, delay);
    uint32_t k = 0;
    if (fs::exists(out)) k = whole_chunks(read_gguf(out));  // must load
    if (sig == SIGTERM) {
      // A clean stop, not a crash, unless the run had already ended with every chunk.
      EXPECT_TRUE(rc == 143 || (rc == 0 && k == uint32_t(kChunks))) << "rc " << rc << ", " << k << " chunks";
    }
    std::fprintf(stderr, "trial %d: signal %d after %lld ms: rc %d, %u chunks saved\n", trial, sig, (long long)delay.count(), rc, k);
    if (k == uint32_t(kChunks)) {
      expect_same_entries(read_gguf(out), ref);
      continue;
    }
    const std::string resume = k ? fmt::format("--chunk {} --chunks {} --in-file {}", k, kChunks - int(k), out)
                                 : fmt::format("--chunks {}", kChunks);
    auto r = run_imq(collect_args(s(), resume + " -o " + d_.file("final.gguf")));
    ASSERT_EQ(r.rc, 0) << r.err;
    const Imatrix fin = read_gguf(d_.file("final.gguf"));
    EXPECT_EQ(fin.chunk_count, uint32_t(kChunks));
    expect_same_entries(fin, ref);
  }
}

// A token whose embedding is NaN, first seen in chunk 3: chunks 1-2 are saved, the error names
// chunk 3 and the first weight that sees the NaN, and the saved file resumes after the chunk.
TEST_F(CollectRun, NanStopsWithTheGoodChunksSaved) {
  gguf::File model = gguf::File::open(model_);
  auto tok = load_tokenizer(model);
  std::string text = read_all(text_);
  if (!text.empty() && text.back() == '\n') text.pop_back();
  const auto tokens = tok->encode(text, true, false);
  std::vector<int> first_chunk(size_t(tok->n_vocab()), -1);
  for (size_t i = 0; i < 4 * 128 && i < tokens.size(); ++i)
    if (i % 128 != 0 && first_chunk[size_t(tokens[i])] < 0) first_chunk[size_t(tokens[i])] = int(i / 128);
  int32_t bad = -1;
  for (size_t t = 0; t < first_chunk.size() && bad < 0; ++t)
    if (first_chunk[t] == 2) bad = int32_t(t);
  ASSERT_GE(bad, 0) << "no token first seen in chunk 3";

  std::string bytes = read_all(model_);
  const gguf::TensorInfo& emb = model.tensor("token_embd.weight");
  ASSERT_EQ(emb.type, GgmlType::F32);
  const size_t at = size_t(model.data_offset() + emb.offset) + size_t(bad) * size_t(emb.ne[0]) * 4;
  const float nan = NAN;
  for (int64_t j = 0; j < emb.ne[0]; ++j) std::memcpy(&bytes[at + size_t(j) * 4], &nan, 4);
  write_bytes(d_.file("nan.gguf"), bytes);

  const std::string out = d_.file("o.gguf");
  auto r = run_imq(collect_args({d_.file("nan.gguf"), text_}, "--chunks 4 --output-frequency 10 -o " + out));
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find("chunk 3: the input of blk.0.attn_q.weight holds NaN or Inf"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--chunk 3 --in-file"), std::string::npos) << r.err;
  EXPECT_EQ(whole_chunks(read_gguf(out)), 2u);
}

TEST_F(CollectRun, BadArgumentsOneLineNoOutput) {
  const std::string out = d_.file("o.gguf");
  write_bytes(d_.file("short.txt"), "Once upon a time.\n");
  auto one_line = [&](const RunResult& r, const std::string& needle) {
    EXPECT_EQ(r.rc, 1) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << "want '" << needle << "' in: " << r.err;
  };
  one_line(run_imq(collect_args({model_, d_.file("short.txt")}, "-o " + out)), "needs at least 256");
  one_line(run_imq(collect_args(s(), "--chunk 100000 -o " + out)), "--chunk 100000");
  one_line(run_imq(collect_args(s(), "-o " + d_.file("missing/dir/o.gguf"))), "does not exist");
  one_line(run_imq(collect_args({model_, d_.file("absent.txt")}, "-o " + out)), "cannot open");
  IMQ_NEED_SHARED(dense_ref, "reference/dense-spm4k/imatrix-calib-c256.gguf");
  one_line(run_imq(collect_args(s(), "--chunks 1 --in-file " + dense_ref + " -o " + out)), "256 tokens per chunk");
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
}  // namespace imq::test
