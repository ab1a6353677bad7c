// The llama-quantize reference runs under ../shared/reference (README "Commands"): which model,
// mix, imatrix and flags made each q-<MIX>-{imat,noimat} listing.
#pragma once
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <filesystem>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "imq/quantize.h"
#include "test_util.h"

namespace imq::test {

struct RefCase {
  std::string model;  // folder under reference/ and models/<model>-f32.gguf (archs/<arch>: -bf16)
  std::string mix;    // TYPE argument
  bool imat;          // with --imatrix reference/<model>/imatrix-calib-c<ctx>.gguf
  bool pure;          // codec256 files are --pure
  bool has_info;      // q-*.info.tsv exists (dense/MoE/stories)
  bool has_gguf;      // the full q-*.gguf is shipped

  std::string stem() const { return "reference/" + model + "/q-" + mix + (imat ? "-imat" : "-noimat"); }
  bool arch() const { return model.rfind("archs/", 0) == 0; }
  std::string input() const { return "models/" + model + (arch() ? "-bf16.gguf" : "-f32.gguf"); }
  // The path string exactly as given to llama-quantize (it is recorded in the output).
  std::string imatrix() const {
    const char* ctx = (model == "dense-spm4k" || model == "moe-gpt2bpe" || arch()) ? "256" : "128";
    return "reference/" + model + "/imatrix-calib-c" + ctx + ".gguf";
  }
  // The legacy .dat llama-imatrix converted from imatrix() (same collection, same means).
  std::string imatrix_dat() const {
    const std::string gguf = imatrix();
    return gguf.substr(0, gguf.size() - std::string_view(".gguf").size()) + ".dat";
  }
  std::string label() const { return gtest_name(model + "_" + mix + (imat ? "_imat" : "_noimat")); }
};

inline void PrintTo(const RefCase& c, std::ostream* os) { *os << c.stem(); }

inline std::vector<RefCase> reference_cases() {
  std::vector<RefCase> v;
  for (std::string m : {"dense-spm4k", "moe-gpt2bpe"}) {
    for (std::string mix : {"Q2_K", "Q3_K_M", "Q4_K_M"}) {
      v.push_back({m, mix, true, false, true, mix == "Q4_K_M"});
      v.push_back({m, mix, false, false, true, mix == "Q4_K_M"});
    }
    for (std::string mix : {"Q5_K_M", "Q6_K", "Q8_0", "IQ4_NL", "IQ4_XS"}) v.push_back({m, mix, true, false, true, false});
  }
  // The other architectures (BF16 models): the five mixes with the reference imatrix.
  for (std::string m : {"archs/qwen2", "archs/qwen3", "archs/qwen3moe", "archs/gemma3"})
    for (std::string mix : {"Q4_K_M", "Q3_K_M", "Q2_K", "Q6_K", "IQ4_XS"})
      v.push_back({m, mix, true, false, true, false});
  v.push_back({"stories260K", "Q4_K_M", true, false, true, true});
  v.push_back({"stories260K", "Q4_K_M", false, false, true, true});
  for (std::string mix : {"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K_S", "Q4_K_S",
                          "Q5_K_S", "Q6_K", "IQ4_NL", "IQ4_XS"}) {
    v.push_back({"codec256", mix, true, true, false, true});
    v.push_back({"codec256", mix, false, true, false, true});
  }
  return v;
}

// The i-quant mixes llama-quantize made with each model's imatrix (the other architectures:
// IQ2_XXS and IQ3_M): their plans (types, order, offsets, metadata), their i-quant tensors one
// by one (iquant_tensors_test.cpp) and whole (exact_test.cpp).
inline std::vector<RefCase> iquant_plan_cases() {
  std::vector<RefCase> v;
  for (std::string m : {"dense-spm4k", "moe-gpt2bpe"})
    for (std::string mix : {"IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ3_XXS", "IQ3_XS",
                            "IQ3_S", "IQ3_M"})
      v.push_back({m, mix, true, false, true, false});
  for (std::string m : {"archs/qwen2", "archs/qwen3", "archs/qwen3moe", "archs/gemma3"})
    for (std::string mix : {"IQ2_XXS", "IQ3_M"}) v.push_back({m, mix, true, false, true, false});
  return v;
}

// Runs the rest of a scope with ../shared as the working directory (the reference commands
// ran there and recorded relative paths).
class InShared {
 public:
  InShared() {
    char buf[PATH_MAX];
    old_ = getcwd(buf, sizeof buf) ? buf : ".";
    std::filesystem::current_path(shared_root());
  }
  ~InShared() { std::filesystem::current_path(old_); }

 private:
  std::string old_;
};

inline std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream is(s);
  for (std::string l; std::getline(is, l);) out.push_back(l);
  return out;
}

// llama-quantize's options for case `c`; `imatrix` (the .dat, say) replaces the case's imatrix.
inline quantize::Options options_for(const RefCase& c, const std::string& imatrix = {}) {
  quantize::Options opt;
  opt.ftype = quantize::parse_ftype(c.mix).ftype;
  if (c.imat) opt.imatrix_path = imatrix.empty() ? c.imatrix() : imatrix;
  opt.pure = c.pure;
  return opt;
}

// Fails at the first line that differs (naming it), then on the line count.
inline void expect_same_lines(const std::string& got, const std::string& want, const std::string& what) {
  const auto g = split_lines(got), w = split_lines(want);
  for (size_t i = 0; i < std::min(g.size(), w.size()); ++i) ASSERT_EQ(g[i], w[i]) << what << ": line " << i + 1;
  ASSERT_EQ(g.size(), w.size()) << what << ": line count";
}

}  // namespace imq::test
