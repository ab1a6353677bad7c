// Reading llama.cpp's golden outputs in ../shared/reference: the command that made a file
// (from reference/README.md) and the numbers printed in perplexity / KLD logs.
#pragma once
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.h"

namespace imq::test {

// The README command line whose output is redirected to `rel_output` (e.g.
// "reference/stories260K/ppl-f32-tinystories-c128.log"), split into words, without the
// redirections. Empty when not found.
inline std::vector<std::string> reference_command(const std::string& rel_output) {
  const std::string readme = read_all((shared_root() / "reference/README.md").string());
  std::istringstream in(readme);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find("> " + rel_output + " ") == std::string::npos &&
        line.find("> " + rel_output + "\n") == std::string::npos &&
        !(line.size() >= rel_output.size() + 2 &&
          line.compare(line.size() - rel_output.size() - 2, std::string::npos, "> " + rel_output) == 0))
      continue;
    std::vector<std::string> words;
    std::istringstream ws(line);
    std::string w;
    while (ws >> w) {
      if (w == ">" || w == "2>&1" || w.rfind(">", 0) == 0 || w.rfind("2>", 0) == 0) break;
      words.push_back(w);
    }
    return words;
  }
  return {};
}

// Value following `flag` in a command, or "" when absent.
inline std::string flag_value(const std::vector<std::string>& cmd, const std::string& flag) {
  for (size_t i = 0; i + 1 < cmd.size(); ++i)
    if (cmd[i] == flag) return cmd[i + 1];
  return {};
}

// The llama-perplexity arguments of a README command turned into imq's: the tool name dropped,
// paths after -m, -f, --kl-divergence-base made absolute under ../shared.
inline std::string imq_args_from(const std::vector<std::string>& cmd) {
  std::string args;
  for (size_t i = 1; i < cmd.size(); ++i) {
    std::string w = cmd[i];
    if (i > 1 && (cmd[i - 1] == "-m" || cmd[i - 1] == "-f" || cmd[i - 1] == "--kl-divergence-base"))
      w = (shared_root() / w).string();
    args += " " + w;
  }
  return args;
}

// The --ggml-cpu flag for imq that reproduces the llama.cpp build a log came from (its
// system_info line): " --ggml-cpu avx512-bf16" for an AVX512-BF16 build, else "" (AVX2).
inline std::string ggml_cpu_flag(const std::string& log_text) {
  return log_text.find("AVX512_BF16 = 1") != std::string::npos ? " --ggml-cpu avx512-bf16" : "";
}

// "[1]3.5907,[2]3.8448,..." values, in order.
inline std::vector<double> chunk_ppls(const std::string& text) {
  std::vector<double> v;
  static const std::regex re(R"(\[(\d+)\](\d+\.\d+),)");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it)
    v.push_back(std::stod((*it)[2]));
  return v;
}

struct FinalEstimate {
  double ppl = -1, err = -1;
};
inline FinalEstimate final_estimate(const std::string& text) {
  static const std::regex re(R"(Final estimate: PPL = (\d+\.\d+) \+/- (\d+\.\d+))");
  std::smatch m;
  if (!std::regex_search(text, m, re)) return {};
  return {std::stod(m[1]), std::stod(m[2])};
}

// "Label: value" lines of a KLD statistics block: trimmed label -> first number after ':'.
inline std::map<std::string, double> kld_statistics(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  std::string line;
  bool in_stats = false;
  while (std::getline(in, line)) {
    if (line.find("====== ") != std::string::npos) in_stats = true;
    const size_t colon = line.find(':');
    if (!in_stats || colon == std::string::npos) continue;
    std::string label = line.substr(0, colon);
    while (!label.empty() && label.back() == ' ') label.pop_back();
    while (!label.empty() && label.front() == ' ') label.erase(0, 1);
    try {
      out[label] = std::stod(line.substr(colon + 1));
    } catch (...) {
    }
  }
  return out;
}

// The per-chunk KLD table rows: each row's numbers (chunk, ppl, ±, ln ratio, ±, kld, ±, ...).
inline std::vector<std::vector<double>> kld_table(const std::string& text) {
  std::vector<std::vector<double>> rows;
  std::istringstream in(text);
  std::string line;
  static const std::regex num(R"(-?\d+(\.\d+)?)");
  bool in_table = false;
  while (std::getline(in, line)) {
    if (line.rfind("chunk ", 0) == 0) {
      in_table = true;
      continue;
    }
    if (!in_table) continue;
    if (line.empty()) break;
    std::vector<double> row;
    for (auto it = std::sregex_iterator(line.begin(), line.end(), num); it != std::sregex_iterator(); ++it)
      row.push_back(std::stod(it->str()));
    rows.push_back(row);
  }
  return rows;
}

}  // namespace imq::test
