// Faults while writing (issue 15): a write that fails part way (RLIMIT_FSIZE standing in for a
// full disk: imq ignores SIGXFSZ itself, so write() fails with EFBIG), a save that cannot be
// renamed into place, SIGTERM/SIGINT in the middle of an output. Each time: one error line
// naming the file, the previous output intact, no temporary file left; a collection carries
// on after a failed periodic save. File-size limits and rename failures apply to root too.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <set>

#include "common/run_child.h"
#include "imq/gguf.h"
#include "imq/imatrix.h"
#include "imq/imatrix_collect.h"
#include "imq/model.h"
#include "test_util.h"

namespace imq::test {
namespace {

namespace fs = std::filesystem;

const std::string kPrevious = "the previous output\n";

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

// Names in dir containing ".tmp." (AtomicFile's temporary files).
std::vector<std::string> temp_files(const fs::path& dir) {
  std::vector<std::string> v;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.path().filename().string().find(".tmp.") != std::string::npos) v.push_back(e.path().string());
  return v;
}

std::string text_of(int words) {
  std::string s;
  for (int i = 0; i < words; ++i) s += "the cat sat on mat " + std::to_string(i % 17) + " ";
  return s + "\n";
}

model::SynthOptions small_model() {
  model::SynthOptions o;
  o.n_embd = 64, o.n_layer = 2, o.n_head = 4, o.n_head_kv = 2, o.n_ff = 96, o.n_vocab = 300;
  return o;
}

// Large enough that quantizing or evaluating it takes a while (about 60 MB of F32).
model::SynthOptions slow_model() {
  model::SynthOptions o;
  o.n_embd = 512, o.n_layer = 4, o.n_head = 8, o.n_head_kv = 8, o.n_ff = 1536, o.n_vocab = 1000;
  return o;
}

// The last stderr line, which must be the error, and that there is exactly one error line.
void expect_error_line(const RunResult& r, const std::vector<std::string>& needles) {
  EXPECT_EQ(r.rc, 1) << r.err;
  size_t n_errors = 0;
  for (size_t at = 0; (at = r.err.find(": error: ", at)) != std::string::npos; ++at) ++n_errors;
  EXPECT_EQ(n_errors, 1u) << r.err;
  const size_t start = r.err.rfind('\n', r.err.size() >= 2 ? r.err.size() - 2 : 0);
  const std::string last = r.err.substr(start == std::string::npos ? 0 : start + 1);
  for (const auto& n : needles) EXPECT_NE(last.find(n), std::string::npos) << "want '" << n << "' in: " << last;
}

class WriteFaults : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = d_.file("model.gguf");
    model::write_synthetic_model(small_model(), model_);
    write_file(d_.file("text.txt"), text_of(400));
  }
  TempDir d_;
  std::string model_;
};

// The output would be ~120 KB; the limit stops it at 48 KB.
TEST_F(WriteFaults, QuantizeHittingFileSizeLimit) {
  const std::string out = d_.file("out.gguf");
  write_file(out, kPrevious);
  ChildOptions o;
  o.fsize_limit = 48 << 10;
  const RunResult r = run_imq_child({"quantize", model_, out, "Q8_0", "1"}, o);
  expect_error_line(r, {out, "write failed after", "File too large"});
  EXPECT_EQ(read_all(out), kPrevious);
  EXPECT_EQ(temp_files(d_.path()), std::vector<std::string>{});
  // The same command without the limit succeeds: the failure was the limit's.
  ASSERT_EQ(run_imq_child({"quantize", model_, out, "Q8_0", "1"}).rc, 0);
  EXPECT_EQ(gguf::File::open(out).tensors().size(), gguf::File::open(model_).tensors().size());
}

// A 400 KB imatrix converted to .dat and to GGUF under a 64 KB limit.
TEST_F(WriteFaults, ImatrixConvertHittingFileSizeLimit) {
  imatrix::Imatrix m;
  m.chunk_size = 32, m.chunk_count = 1;
  m.entries["blk.0.ffn_down.weight"] = {std::vector<float>(100000, 1.0f), {32.0f}};
  const std::string in = d_.file("big.gguf");
  imatrix::write_gguf(m, in);
  for (const std::string ext : {".dat", ".gguf"}) {
    const std::string out = d_.file("out" + ext);
    write_file(out, kPrevious);
    ChildOptions o;
    o.fsize_limit = 64 << 10;
    const RunResult r = run_imq_child({"imatrix", "convert", in, "-o", out}, o);
    expect_error_line(r, {out, "write failed after", "File too large"});
    EXPECT_EQ(read_all(out), kPrevious) << ext;
    EXPECT_EQ(temp_files(d_.path()), std::vector<std::string>{});
  }
}

// Every save of a collection fails: each periodic one is a warning and the chunks go on; the
// final one is the error. The previous imatrix stays.
TEST_F(WriteFaults, CollectionWhoseSavesAllFail) {
  const std::string out = d_.file("imatrix.gguf");
  write_file(out, kPrevious);
  ChildOptions o;
  o.fsize_limit = 2 << 10;  // the imatrix is ~8 KB
  const RunResult r = run_imq_child({"imatrix", "-m", model_, "-f", d_.file("text.txt"), "-o", out, "-c", "32",
                                     "--chunks", "4", "--output-frequency", "1", "-t", "1"},
                                    o);
  expect_error_line(r, {out, "write failed after", "File too large"});
  for (int c = 1; c <= 4; ++c)
    EXPECT_NE(r.err.find("warning: the save after " + std::to_string(c) + " chunks failed (" + out), std::string::npos)
        << c << ": " << r.err;
  EXPECT_NE(r.out.find("[4]"), std::string::npos) << "all four chunks ran: " << r.out;
  EXPECT_EQ(read_all(out), kPrevious);
  EXPECT_EQ(temp_files(d_.path()), std::vector<std::string>{});
}

// The save after chunk 2 cannot be renamed into place (a directory holds its name): collection
// goes on, says so, and the saves after it and the final output hold every chunk.
TEST_F(WriteFaults, CollectionGoesOnAfterAFailedPeriodicSave) {
  const std::string out = d_.file("imatrix.gguf");
  fs::create_directory(out + ".at_2");
  write_file(out + ".at_2/keep", "x");
  const RunResult r = run_imq_child({"imatrix", "-m", model_, "-f", d_.file("text.txt"), "-o", out, "-c", "32",
                                     "--chunks", "4", "--save-frequency", "1", "-t", "1"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("warning: the save after 2 chunks failed (" + out + ".at_2: cannot rename"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("collecting goes on in memory and the next save retries"), std::string::npos) << r.err;
  EXPECT_EQ(imatrix::read_gguf(out + ".at_1").chunk_count, 1u);
  EXPECT_EQ(imatrix::read_gguf(out + ".at_3").chunk_count, 3u);
  EXPECT_EQ(imatrix::read_gguf(out).chunk_count, 4u);
  EXPECT_EQ(temp_files(d_.path()), std::vector<std::string>{});
}

// The retry of the same file, through the library: the output's name is blocked between the
// saves after chunks 1 and 3, so only the save after chunk 2 fails and the next one succeeds.
TEST_F(WriteFaults, FailedPeriodicSaveIsRetriedAtTheNextOne) {
  auto m = model::Model::load(model_);
  std::vector<int32_t> tokens(32 * 5);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = int32_t(3 + i * 7 % 290);
  imatrix::CollectOptions o;
  o.n_ctx = 32, o.n_chunks = 4, o.n_threads = 1, o.output_frequency = 1;
  o.output = d_.file("imatrix.gguf");
  std::vector<std::string> events;
  imatrix::CollectHooks h;
  h.on_save = [&](const std::string&, uint32_t n) { events.push_back("saved " + std::to_string(n)); };
  h.on_save_failed = [&](const std::string& path, uint32_t n, const std::string& error) {
    events.push_back("failed " + std::to_string(n));
    EXPECT_EQ(error.rfind(path, 0), 0u) << error;
  };
  h.on_chunk = [&](const imatrix::CollectProgress& p) {
    if (p.done == 1) {
      fs::remove(o.output);
      fs::create_directory(o.output);
      write_file(o.output + "/keep", "x");
    }
    if (p.done == 2) fs::remove_all(o.output);
  };
  const auto r = imatrix::collect(*m, tokens, -1, {}, o, h);
  EXPECT_EQ(events, (std::vector<std::string>{"saved 1", "failed 2", "saved 3", "saved 4", "saved 4"}));
  EXPECT_EQ(r.chunks_done, 4);
  EXPECT_EQ(imatrix::read_gguf(o.output).chunk_count, 4u);
  EXPECT_EQ(temp_files(d_.path()), std::vector<std::string>{});
}

// SIGTERM (or SIGINT) once the temporary output exists: the command stops, removes it, exits
// with 128 + the signal, and the previous output stays.
RunResult signal_when_temp_appears(const std::vector<std::string>& args, const std::string& out, int sig, bool& sent) {
  ChildOptions o;
  sent = false;
  o.poll = [&](pid_t pid) {
    if (!sent && fs::exists(out + ".tmp." + std::to_string(pid))) {
      kill(pid, sig);
      sent = true;
    }
  };
  return run_imq_child(args, o);
}

class SignalFaults : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    model::write_synthetic_model(slow_model(), dir_->file("slow.gguf"));
    write_file(dir_->file("text.txt"), text_of(2000));
  }
  static void TearDownTestSuite() { delete dir_; }
  static TempDir* dir_;
};
TempDir* SignalFaults::dir_ = nullptr;

TEST_F(SignalFaults, QuantizeStopsOnSigtermWithoutLeavingATemporaryFile) {
  TempDir d;
  const std::string out = d.file("out.gguf");
  write_file(out, kPrevious);
  bool sent = false;
  const RunResult r =
      signal_when_temp_appears({"quantize", dir_->file("slow.gguf"), out, "Q4_K_M", "1"}, out, SIGTERM, sent);
  ASSERT_TRUE(sent) << "the quantization ended before the signal: " << r.err;
  EXPECT_EQ(r.rc, 128 + SIGTERM) << r.err;
  EXPECT_NE(r.err.find("imq quantize: stopped by signal 15: " + out + ": interrupted before tensor"), std::string::npos)
      << r.err;
  EXPECT_EQ(read_all(out), kPrevious);
  EXPECT_EQ(temp_files(d.path()), std::vector<std::string>{});
}

TEST_F(SignalFaults, LogitsFileStopsOnSigintWithoutLeavingATemporaryFile) {
  TempDir d;
  const std::string out = d.file("base.kld");
  write_file(out, kPrevious);
  bool sent = false;
  const RunResult r = signal_when_temp_appears({"perplexity", "-m", dir_->file("slow.gguf"), "-f", dir_->file("text.txt"),
                                                "-c", "64", "-t", "1", "--kl-divergence-base", out},
                                               out, SIGINT, sent);
  ASSERT_TRUE(sent) << "the run ended before the signal: " << r.err;
  EXPECT_EQ(r.rc, 128 + SIGINT) << r.err;
  EXPECT_NE(r.err.find("imq perplexity: stopped by signal 2 after "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(out + " not written"), std::string::npos) << r.err;
  EXPECT_EQ(read_all(out), kPrevious);
  EXPECT_EQ(temp_files(d.path()), std::vector<std::string>{});
}

}  // namespace
}  // namespace imq::test
