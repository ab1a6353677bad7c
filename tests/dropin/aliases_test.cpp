// The multi-call binary: imq linked as llama-imatrix, llama-quantize, llama-perplexity,
// llama-tokenize (or imq-<command>) behaves exactly as `imq <command>`: same exit code, same
// stdout, same bytes in the files it writes. The links are made here, at test time.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "dropin_util.h"

namespace imq::test {
namespace {

// stdout without the lines that carry a wall-clock time (quantize's "quantize time = ..."),
// and with the output file's name replaced by OUT.
std::string untimed(const std::string& out, const std::string& name) {
  std::string kept;
  for (auto l : lines_of(out)) {
    if (l.find(" time = ") != std::string::npos) continue;
    for (size_t p = l.find(name); !name.empty() && p != std::string::npos; p = l.find(name, p + 3))
      l.replace(p, name.size(), "OUT");
    kept += l + "\n";
  }
  return kept;
}

class Aliases : public ::testing::Test {
 protected:
  void SetUp() override { link_aliases(setup_.dir()); }
  // Runs `<alias> args` and `imq <command> args` (with OUT replaced by a.gguf and b.gguf)
  // and expects the same results.
  void same(const std::string& alias, const std::string& command, const std::string& args,
            const std::string& out_ext = "") {
    auto with = [&](const std::string& out) {
      std::string a = args;
      if (const size_t p = a.find("OUT"); p != std::string::npos) a.replace(p, 3, out);
      return a;
    };
    const std::string a_out = "a" + out_ext, b_out = "b" + out_ext;
    const RunResult a = run_in(setup_.dir(), "./" + alias + " " + with(a_out));
    const RunResult b = setup_.imq(command + " " + with(b_out));
    EXPECT_EQ(a.rc, b.rc) << alias << " " << args << "\n" << a.err << "\n" << b.err;
    const bool named = !out_ext.empty();
    EXPECT_EQ(untimed(a.out, named ? a_out : ""), untimed(b.out, named ? b_out : "")) << alias << " " << args;
    if (!out_ext.empty()) {
      const std::string x = read_all(setup_.file(a_out)), y = read_all(setup_.file(b_out));
      EXPECT_FALSE(x.empty()) << alias << " " << args;
      EXPECT_EQ(x, y) << alias << " " << args << ": the output files differ";
    }
  }
  TinySetup setup_;
};

TEST_F(Aliases, ImatrixCollectAndHelp) {
  same("llama-imatrix", "imatrix", "-m model.gguf -f text.txt -c 64 --chunks 3 -t 1 -o OUT", ".gguf");
  same("imq-imatrix", "imatrix", "-m model.gguf -f text.txt -c 64 --chunks 2 -t 1 -o OUT --output-format dat", ".dat");
  same("llama-imatrix", "imatrix", "--help");
  same("llama-imatrix", "imatrix", "-m model.gguf -f missing.txt");  // the same error
}

TEST_F(Aliases, Quantize) {
  same("llama-quantize", "quantize", "model.gguf OUT q8_0", ".gguf");
  same("imq-quantize", "quantize", "--pure model.gguf OUT Q4_0 2", ".gguf");
  same("llama-quantize", "quantize", "--help");
}

TEST_F(Aliases, Perplexity) {
  same("llama-perplexity", "perplexity", "-m model.gguf -f text.txt -c 64 --chunks 2 -t 2");
  same("imq-perplexity", "perplexity", "-m model.gguf -f text.txt -c 64 --chunks 2 -t 2 --kl-divergence-base OUT", ".bin");
}

TEST_F(Aliases, TokenizeAndGenerate) {
  same("llama-tokenize", "tokenize", "-m model.gguf -p 'the cat sat' --ids");
  same("imq-tokenize", "tokenize", "-m model.gguf -p 'the cat' --show-count");
  same("imq-generate", "generate", "-m model.gguf -p 'the cat' -n 8 --temp 0");
}

TEST_F(Aliases, OtherNamesAreImqItself) {
  // A copy under another name dispatches on argv[1] as imq does; llama-generate is no alias.
  for (const char* name : {"imq2", "llama-generate"}) {
    std::filesystem::create_symlink(std::filesystem::absolute(IMQ_BINARY), setup_.dir() / name);
    const RunResult r = run_in(setup_.dir(), std::string("./") + name + " tokenize -m model.gguf -p hi --ids");
    EXPECT_EQ(r.rc, 0) << name << r.err;
    EXPECT_EQ(r.out, setup_.imq("tokenize -m model.gguf -p hi --ids").out) << name;
  }
}

}  // namespace
}  // namespace imq::test
