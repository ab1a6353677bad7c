// Helpers for the drop-in tests: shell commands run in a directory, the multi-call aliases
// (llama-imatrix ... as symlinks to the imq binary), and a tiny synthetic model with a text.
#pragma once
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "test_util.h"

namespace imq::test {

// The names a multi-call imq answers to (tools/imq/main.cpp).
inline const std::vector<std::string>& alias_names() {
  static const std::vector<std::string> names = {
      "llama-imatrix", "llama-quantize", "llama-perplexity", "llama-tokenize", "imq-imatrix",
      "imq-quantize",  "imq-perplexity", "imq-tokenize",     "imq-generate"};
  return names;
}

// Symlinks every alias name in `dir` to the imq binary.
inline void link_aliases(const std::filesystem::path& dir) {
  for (const auto& n : alias_names())
    std::filesystem::create_symlink(std::filesystem::absolute(IMQ_BINARY), dir / n);
}

// Runs `command` with sh in `dir` (stdin empty); stdout and stderr captured apart.
inline RunResult run_in(const std::filesystem::path& dir, const std::string& command) {
  TempDir cap;
  const std::string out = cap.file("out"), err = cap.file("err");
  const std::string cmd = "cd '" + dir.string() + "' && ( " + command + "\n) >" + out + " 2>" + err + " </dev/null";
  const int st = std::system(cmd.c_str());
  const int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
  return {rc, read_all(out), read_all(err)};
}

inline std::string imq_path() { return std::filesystem::absolute(IMQ_BINARY).string(); }

// Lines of `s` (without their newlines).
inline std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> v;
  size_t start = 0;
  while (start < s.size()) {
    size_t nl = s.find('\n', start);
    if (nl == std::string::npos) nl = s.size();
    v.push_back(s.substr(start, nl - start));
    start = nl + 1;
  }
  return v;
}

// A directory holding a tiny random-weight model (model.gguf, imq synth) and a text
// (text.txt) of about `words` words, so that the tests need nothing from ../shared.
class TinySetup {
 public:
  explicit TinySetup(int words = 1200) {
    const auto r = run_in(dir_.path(), imq_path() + " synth -o model.gguf");
    EXPECT_EQ(r.rc, 0) << r.err;
    std::ofstream t(dir_.file("text.txt"));
    const char* w[] = {"the", "cat", "sat", "on", "a", "mat", "and", "looked", "at", "stars", "while", "it", "rained"};
    for (int i = 0; i < words; ++i) t << w[(i * 7 + i / 13) % 13] << ((i % 17 == 16) ? ".\n" : " ");
  }
  const std::filesystem::path& dir() const { return dir_.path(); }
  std::string file(const std::string& name) const { return dir_.file(name); }
  // `imq <args>` in the setup's directory.
  RunResult imq(const std::string& args) const { return run_in(dir(), imq_path() + " " + args); }

 private:
  TempDir dir_;
};

}  // namespace imq::test
