// llama.cpp's common flags, one test each: accepted and effective, accepted with the one-line
// CPU notice, or refused with a one-line error. Runs on a synthetic model (no ../shared).
#include <gtest/gtest.h>

#include <string>

#include "dropin_util.h"
#include "test_util_impl.h"

namespace imq::test {
namespace {

const std::string kPpl = "perplexity -m model.gguf -f text.txt -c 64 --chunks 2 -t 2";

class CommonFlags : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    setup_ = new TinySetup();
    base_ = new RunResult(setup_->imq(kPpl));
  }
  static void TearDownTestSuite() {
    delete base_;
    delete setup_;
  }
  // perplexity with `flags`: must succeed with the baseline's results.
  static RunResult same_results(const std::string& flags) {
    RunResult r = setup_->imq(kPpl + " " + flags);
    EXPECT_EQ(r.rc, 0) << flags << "\n" << r.err;
    EXPECT_EQ(r.out, base_->out) << flags;
    return r;
  }
  // `imq <args>` must fail with exactly this one stderr line.
  static void refused(const std::string& args, const std::string& line) {
    const RunResult r = setup_->imq(args);
    EXPECT_EQ(r.rc, 1) << args;
    EXPECT_EQ(r.err, line + "\n") << args;
  }
  static TinySetup* setup_;
  static RunResult* base_;
};
TinySetup* CommonFlags::setup_ = nullptr;
RunResult* CommonFlags::base_ = nullptr;

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

TEST_F(CommonFlags, BaselineRuns) {
  ASSERT_EQ(base_->rc, 0) << base_->err;
  EXPECT_NE(base_->out.find("Final estimate: PPL = "), std::string::npos);
  EXPECT_NE(base_->err.find("threads=2"), std::string::npos) << base_->err;
}

TEST_F(CommonFlags, ThreadsBatchIsTheThreadCountWithoutT) {
  const RunResult r = setup_->imq("perplexity -m model.gguf -f text.txt -c 64 --chunks 2 -tb 3");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("threads=3"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, base_->out);  // results do not depend on the thread count
  EXPECT_NE(same_results("-tb 3").err.find("threads=2"), std::string::npos);  // -t wins
  same_results("--threads-batch 1");
}

TEST_F(CommonFlags, NoMmapReadsTheModel) {
  const RunResult r = same_results("--no-mmap -lv 4");
  EXPECT_NE(r.err.find("into memory"), std::string::npos) << r.err;
}

TEST_F(CommonFlags, MlockLocksOrWarnsOnce) {
  const RunResult r = same_results("--mlock -lv 4");
  const size_t warnings = count(r.err, "warning: --mlock");
  EXPECT_TRUE((warnings == 0 && r.err.find("(--mlock)") != std::string::npos) || warnings == 1) << r.err;
}

TEST_F(CommonFlags, NumaIsAcceptedWithoutEffect) {
  same_results("--numa distribute");
  same_results("--numa isolate");
  same_results("--numa numactl");
  refused(kPpl + " --numa everywhere", "imq perplexity: error: --numa everywhere: expected distribute, isolate or numactl");
}

TEST_F(CommonFlags, SeedDrivesSampling) {
  const std::string gen = "generate -m model.gguf -p 'the cat' -n 24 --temp 1 --no-echo --ignore-eos";
  const RunResult a = setup_->imq(gen + " -s 7"), b = setup_->imq(gen + " --seed 7"),
                  c = setup_->imq(gen + " -s 8");
  ASSERT_EQ(a.rc, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_NE(a.out, c.out);
  EXPECT_EQ(setup_->imq(gen + " -s -1").rc, 0);  // llama.cpp's "random seed"
  same_results("-s 123");                        // accepted where nothing is random
}

TEST_F(CommonFlags, CacheTypeF32KeepsKeysAndValuesInFloat) {
  same_results("-ctk f16 -ctv f16");
  const RunResult r = setup_->imq(kPpl + " -ctk f32 -ctv f32");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out, base_->out);  // no half rounding in the cache: other last digits
  EXPECT_EQ(setup_->imq(kPpl + " --cache-type-k f32 --cache-type-v f32").out, r.out);
  const std::string supported = "imq's K/V cache holds f16 (the default) or f32";
  refused(kPpl + " -ctk q8_0", "imq perplexity: error: -ctk/--cache-type-k q8_0: " + supported);
  refused(kPpl + " -ctv q4_0", "imq perplexity: error: -ctv/--cache-type-v q4_0: " + supported);
  refused(kPpl + " -ctk f64", "imq perplexity: error: -ctk/--cache-type-k f64: not a llama.cpp cache type; " + supported);
}

TEST_F(CommonFlags, NoWarmupIsANoOp) { same_results("--no-warmup"); }

TEST_F(CommonFlags, VerbosityFiltersTheLog) {
  EXPECT_EQ(same_results("-lv 2").err, "");
  EXPECT_EQ(same_results("--verbosity 0").err, "");
  EXPECT_NE(same_results("-lv 3").err.find("perplexity: tokenizing"), std::string::npos);
}

TEST_F(CommonFlags, LogDisableSilencesStderr) {
  EXPECT_EQ(same_results("--log-disable").err, "");
  EXPECT_EQ(same_results("--log-disable -ngl 99").err, "");  // the notice is a log line too
}

TEST_F(CommonFlags, LogFileGetsTheLogLines) {
  const std::string path = setup_->file("run.log");
  const RunResult r = same_results("--log-file " + path);
  const std::string log = read_all(path);
  EXPECT_NE(log.find("perplexity: tokenizing the input"), std::string::npos) << log;
  EXPECT_EQ(log, r.err);  // the same lines, also on stderr
  same_results("--log-disable --log-file " + path);
  EXPECT_NE(read_all(path).find("perplexity: calculating"), std::string::npos);
  refused(kPpl + " --log-file /nonexistent-dir/x.log",
          "imq perplexity: error: --log-file /nonexistent-dir/x.log: cannot create: No such file or directory");
}

TEST_F(CommonFlags, AcceleratorFlagsGiveOneNotice) {
  const char* cases[][2] = {
      {"-ngl 99", "-ngl"}, {"--n-gpu-layers 99", "--n-gpu-layers"}, {"--gpu-layers 0", "--gpu-layers"},
      {"-fa on", "-fa"}, {"-fa off", "-fa"}, {"-fa auto", "-fa"}, {"-fa", "-fa"},
      {"--flash-attn on", "--flash-attn"}, {"--flash-attn=off", "--flash-attn"},
      {"-dev none", "-dev"}, {"--device CUDA0,CUDA1", "--device"}, {"-sm row", "-sm"},
      {"--split-mode layer", "--split-mode"}, {"-ts 3,1", "-ts"}, {"--tensor-split 1,1", "--tensor-split"},
      {"-mg 1", "-mg"}, {"--main-gpu 0", "--main-gpu"}, {"-nkvo", "-nkvo"},
      {"--no-kv-offload", "--no-kv-offload"}, {"--no-op-offload", "--no-op-offload"}};
  for (const auto& [flags, name] : cases) {
    const RunResult r = same_results(flags);
    const std::string notice = std::string("imq: note: ") + name +
                               " ignored: imq computes on the CPU; use -t for threads";
    EXPECT_EQ(count(r.err, "imq: note:"), 1u) << flags << "\n" << r.err;
    EXPECT_NE(r.err.find(notice + "\n"), std::string::npos) << flags << "\n" << r.err;
  }
  // A bare -fa before another option, and several flags: still one line.
  const RunResult r = setup_->imq("perplexity -fa -ngl 99 -sm none -m model.gguf -f text.txt -c 64 --chunks 2 -t 2 -ngl 1");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, base_->out);
  EXPECT_EQ(count(r.err, "imq: note:"), 1u) << r.err;
  EXPECT_NE(r.err.find("imq: note: -fa, -ngl, -sm ignored"), std::string::npos) << r.err;
  refused(kPpl + " -fa maybe", "imq perplexity: error: -fa/--flash-attn maybe: expected on, off or auto");
}

TEST_F(CommonFlags, ImatrixTakesTheIssuesCommand) {
  const RunResult r = setup_->imq("imatrix -m model.gguf -f text.txt -o out.gguf -ngl 99 "
                                  "--output-frequency 20 --save-frequency 100 --chunks 10 -c 64");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(count(r.err, "imq: note: -ngl ignored"), 1u) << r.err;
  EXPECT_TRUE(std::filesystem::exists(setup_->file("out.gguf")));
  for (const char* flags : {"-tb 2 --no-mmap --mlock --numa distribute -s 1 -ctk f32 -ctv f32 --no-warmup",
                            "-fa on -dev none -sm none -ts 1 -mg 0 -nkvo --no-op-offload --log-disable"}) {
    const RunResult f = setup_->imq(std::string("imatrix -m model.gguf -f text.txt -o f.gguf -c 64 --chunks 2 ") + flags);
    EXPECT_EQ(f.rc, 0) << flags << "\n" << f.err;
  }
}

TEST_F(CommonFlags, GenerateTakesThem) {
  const RunResult r = setup_->imq("generate -m model.gguf -p 'the cat' -n 4 --temp 0 -ngl 99 -fa --no-mmap -ctk f32 -tb 2");
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(count(r.err, "imq: note:"), 1u) << r.err;
}

TEST_F(CommonFlags, OtherLlamaFlagsAreRefusedByName) {
  for (const char* f : {"--rope-freq-base 10000", "--yarn-orig-ctx 4096", "-np 4", "--cont-batching", "-cb",
                        "--rope-scaling=linear", "--hellaswag"}) {
    const std::string name = std::string(f).substr(0, std::string(f).find_first_of(" ="));
    refused(kPpl + " " + f, "imq perplexity: error: " + name + " is a llama.cpp option imq does not support");
  }
  refused("imatrix -m model.gguf -f text.txt --rope-freq-base 1",
          "imq imatrix: error: --rope-freq-base is a llama.cpp option imq does not support");
  refused(kPpl + " --frobnicate 3", "imq perplexity: error: unknown option --frobnicate");
  refused(kPpl + " stray", "imq perplexity: error: unexpected argument 'stray'");
}

TEST_F(CommonFlags, ToolsWithTheirOwnParserRefuseCommonFlags) {
  // llama-quantize and llama-tokenize do not parse llama.cpp's common options either.
  refused("quantize model.gguf out.gguf q8_0 -ngl 99",
          "imq quantize: error: -ngl is a llama.cpp common option, which llama-quantize does not take either");
  refused("quantize --no-mmap model.gguf out.gguf q8_0",
          "imq quantize: error: --no-mmap is a llama.cpp common option, which llama-quantize does not take either");
  refused("tokenize -m model.gguf -p hi -t 4",
          "imq tokenize: error: -t is a llama.cpp common option, which llama-tokenize does not take either");
  refused("quantize --frobnicate model.gguf out.gguf q8_0", "imq quantize: error: unknown option --frobnicate");
  EXPECT_EQ(setup_->imq("tokenize -m model.gguf -p hi --log-disable --ids").rc, 0);  // llama-tokenize has it
}

TEST_F(CommonFlags, HelpListsThemInOneGroup) {
  for (const char* cmd : {"perplexity", "imatrix", "generate"}) {
    const RunResult r = setup_->imq(std::string(cmd) + " --help");
    ASSERT_EQ(r.rc, 0) << cmd;
    EXPECT_EQ(count(r.out, "llama.cpp common options"), 1u) << cmd << "\n" << r.out;
    const std::string group = r.out.substr(r.out.find("llama.cpp common options"));
    for (const char* flag : {"--threads-batch", "--no-mmap", "--mlock", "--numa", "--seed", "--cache-type-k",
                             "--cache-type-v", "--no-warmup", "--verbosity", "--log-disable", "--log-file",
                             "--n-gpu-layers", "--flash-attn", "--device", "--split-mode", "--tensor-split",
                             "--main-gpu", "--no-kv-offload", "--no-op-offload"})
      EXPECT_NE(group.find(flag), std::string::npos) << cmd << " " << flag;
  }
  EXPECT_EQ(setup_->imq("quantize --help").out.find("llama.cpp common options"), std::string::npos);
}

}  // namespace
}  // namespace imq::test
