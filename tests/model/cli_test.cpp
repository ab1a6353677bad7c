// imq synth / generate / perplexity on synthetic models (no ../shared needed).
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <regex>

#include "test_util.h"

namespace imq {
namespace {

std::string paragraph_text(const test::TempDir& d) {
  const auto path = d.file("text.txt");
  std::ofstream f(path);
  for (int i = 0; i < 40; ++i)
    f << "Once upon a time there was a little girl who lived in a village near the forest. "
         "The history of the city began in the year 1066.\n";
  return path;
}

TEST(Cli, SynthThenPerplexity) {
  test::TempDir d;
  const auto model = d.file("m.gguf");
  auto r = test::run_imq("synth -o " + model + " --n-embd 32 --n-layer 2 --n-head 4 --n-head-kv 2 --n-ff 64 --vocab 300 --seed 9");
  ASSERT_EQ(r.rc, 0) << r.err;
  r = test::run_imq("perplexity -m " + model + " -f " + paragraph_text(d) + " -c 64 --chunks 3 -t 2");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(^\[1\]\d+\.\d{4},\[2\]\d+\.\d{4},\[3\]\d+\.\d{4},\n)")))
      << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(Final estimate: PPL = \d+\.\d{4} \+/- \d+\.\d{5}\n$)")))
      << r.out;
}

TEST(Cli, SynthMoeNeoxF16ThenGreedyGenerateIsDeterministic) {
  test::TempDir d;
  const auto model = d.file("moe.gguf");
  auto r = test::run_imq("synth -o " + model + " --arch llama-moe --n-expert 4 --n-expert-used 2 --tied --rope neox --type f16");
  ASSERT_EQ(r.rc, 0) << r.err;
  const auto a = test::run_imq("generate -m " + model + " -p \"Once upon a time\" -n 12 --temp 0 -t 2");
  const auto b = test::run_imq("generate -m " + model + " -p \"Once upon a time\" -n 12 --temp 0 -t 1");
  ASSERT_EQ(a.rc, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_EQ(a.out.find(" Once upon a time"), 0u) << a.out;  // echoed as SPM renders it
  EXPECT_GT(a.out.size(), std::string("Once upon a time\n").size());
}

// Every architecture imq runs, from `imq synth --arch` to perplexity, imatrix and quantize.
TEST(Cli, SynthEveryArchitectureThenPerplexityImatrixQuantize) {
  test::TempDir d;
  const auto text = paragraph_text(d);
  for (const char* arch : {"qwen2", "qwen3", "qwen3moe", "gemma3"}) {
    SCOPED_TRACE(arch);
    const auto model = d.file(std::string(arch) + ".gguf");
    auto r = test::run_imq("synth -o " + model + " --arch " + arch +
                           " --n-embd 64 --n-layer 6 --n-head 4 --n-head-kv 2 --n-ff 64 --n-swa 16 --vocab 300");
    ASSERT_EQ(r.rc, 0) << r.err;
    r = test::run_imq("info " + model);
    ASSERT_EQ(r.rc, 0) << r.err;
    EXPECT_NE(r.out.find(std::string("general.architecture") ), std::string::npos);
    EXPECT_NE(r.out.find(std::string(arch) + ".block_count"), std::string::npos) << r.out;
    r = test::run_imq("perplexity -m " + model + " -f " + text + " -c 64 --chunks 3 -t 2");
    ASSERT_EQ(r.rc, 0) << r.err;
    EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(Final estimate: PPL = \d+\.\d{4})"))) << r.out;
    const auto im = d.file(std::string(arch) + "-imatrix.gguf");
    r = test::run_imq("imatrix -m " + model + " -f " + text + " -c 64 --chunks 2 -t 2 -o " + im);
    ASSERT_EQ(r.rc, 0) << r.err;
    r = test::run_imq("quantize --imatrix " + im + " " + model + " " + d.file("q.gguf") + " Q4_K_M 2");
    ASSERT_EQ(r.rc, 0) << r.err;
  }
}

TEST(Cli, UnsupportedArchitectureIsOneLineNamingIt) {
  test::TempDir d;
  const auto model = d.file("m.gguf");
  ASSERT_EQ(test::run_imq("synth -o " + model + " --arch qwen2").rc, 0);
  // The file names its architecture once; an architecture imq does not run is refused by name.
  std::string bytes;
  {
    std::ifstream f(model, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(f), {});
  }
  const std::string from = "qwen2", to = "qwen9";  // same length: offsets stay valid
  size_t at = bytes.find(std::string("\x05\0\0\0\0\0\0\0", 8) + from);
  ASSERT_NE(at, std::string::npos);
  bytes.replace(at + 8, from.size(), to);
  const auto bad = d.file("bad.gguf");
  std::ofstream(bad, std::ios::binary) << bytes;
  const auto r = test::run_imq("perplexity -m " + bad + " -f " + paragraph_text(d) + " -c 64 -t 1");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("unsupported architecture 'qwen9'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("qwen3moe"), std::string::npos) << r.err;  // the list of those it runs
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(Cli, SynthRejectsBadShapes) {
  test::TempDir d;
  const auto r = test::run_imq("synth -o " + d.file("x.gguf") + " --n-embd 30 --n-head 4");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("n_embd 30"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace imq
