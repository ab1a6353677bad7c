// imq: importance-matrix quantization toolkit. `imq <command> ...`; errors print one line.
// Also a multi-call binary: linked as llama-imatrix, imq-quantize ..., it runs that command.
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "commands.h"
#include "imq/error.h"
#include "stop_signals.h"

namespace {

struct Command {
  std::string_view name;
  int (*run)(int, char**);
  std::string_view help;
};

constexpr Command kCommands[] = {
    {"info", imq::cli::cmd_info, "print a GGUF file's header, metadata and tensors"},
    {"tokenize", imq::cli::cmd_tokenize, "tokenize text with a model's vocabulary"},
    {"perplexity", imq::cli::cmd_perplexity, "perplexity and KL divergence (llama-perplexity flags)"},
    {"generate", imq::cli::cmd_generate, "generate text from a prompt"},
    {"run", imq::cli::cmd_run, "in-situ: load, calibrate, quantize in memory, generate (mistral.rs's ISQ)"},
    {"synth", imq::cli::cmd_synth, "write a small random-weight model"},
    {"imatrix", imq::cli::cmd_imatrix, "collect, merge, convert and inspect importance matrices"},
    {"quantize", imq::cli::cmd_quantize, "quantize a GGUF model (llama-quantize syntax)"},
    {"convert", imq::cli::cmd_convert, "convert a Hugging Face model folder to GGUF"},
};

void usage(std::FILE* f) {
  std::fprintf(f, "usage: imq <command> [options]\n\ncommands:\n");
  for (const auto& c : kCommands) std::fprintf(f, "  %-12s %s\n", c.name.data(), c.help.data());
  std::fprintf(f, "\n'imq <command> --help' describes a command's options.\n");
}

// The subcommand a multi-call name stands for: `llama-imatrix` (a symlink to imq, see
// IMQ_INSTALL_LLAMA_ALIASES) runs `imq imatrix`, `imq-quantize` runs `imq quantize`; "" for
// any other name (then argv[1] names the command).
std::string_view alias_command(std::string_view argv0) {
  const size_t slash = argv0.find_last_of('/');
  const std::string_view base = slash == std::string_view::npos ? argv0 : argv0.substr(slash + 1);
  constexpr std::string_view kLlama[] = {"imatrix", "quantize", "perplexity", "tokenize"};
  for (std::string_view prefix : {"llama-", "imq-"}) {
    if (!base.starts_with(prefix)) continue;
    const std::string_view sub = base.substr(prefix.size());
    const bool llama_tool = std::find(std::begin(kLlama), std::end(kLlama), sub) != std::end(kLlama);
    for (const auto& c : kCommands)
      if (c.name == sub && (prefix == "imq-" || llama_tool)) return c.name;
  }
  return {};
}

int run_command(int argc, char** argv) {
  if (argc < 2) {
    usage(stderr);
    return 1;
  }
  std::string_view name = argv[1];
  if (name == "-h" || name == "--help" || name == "help") {
    usage(stdout);
    return 0;
  }
  if (name == "--version") {
    std::printf("imq 0.1.0\n");
    return 0;
  }
  for (const auto& c : kCommands) {
    if (c.name != name) continue;
    try {
      int rc = c.run(argc - 1, argv + 1);
      std::fflush(stdout);
      return rc;
    } catch (const imq::cli::Stopped& e) {
      std::fflush(stdout);
      std::fprintf(stderr, "imq %s: %s\n", argv[1], e.what());
      return 128 + imq::cli::g_signal;
    } catch (const imq::Error& e) {
      std::fflush(stdout);
      std::fprintf(stderr, "imq %s: error: %s\n", argv[1], e.what());
      return 1;
    } catch (const std::exception& e) {
      std::fflush(stdout);
      std::fprintf(stderr, "imq %s: error: %s\n", argv[1], e.what());
      return 1;
    }
  }
  std::fprintf(stderr, "imq: unknown command '%s'\n", argv[1]);
  usage(stderr);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  // A write past RLIMIT_FSIZE (ulimit -f) would otherwise kill the process with SIGXFSZ before
  // any cleanup; ignored, write() fails with EFBIG and the writer reports it, removes its
  // temporary file and leaves the previous output in place. The tool's choice, not the library's.
  std::signal(SIGXFSZ, SIG_IGN);
  const std::string_view alias = argc > 0 ? alias_command(argv[0]) : std::string_view{};
  if (alias.empty()) return run_command(argc, argv);
  // As `imq <alias> args...`: the command name goes in as argv[1].
  std::string sub(alias);
  std::vector<char*> args{argv[0], sub.data()};
  args.insert(args.end(), argv + 1, argv + argc);
  args.push_back(nullptr);
  return run_command(argc + 1, args.data());
}
