// llama.cpp's common parameters (common/arg.cpp's names and aliases) on imq's subcommands,
// declared once in one help group, "llama.cpp common options". Each falls in one of three
// kinds:
//   - meaningful on a CPU and implemented: -tb, --no-mmap, --mlock, --numa, -s, -ctk/-ctv,
//     --no-warmup, -lv, --log-disable, --log-file;
//   - about accelerators (-ngl, -fa, -dev, -sm, -ts, -mg, -nkvo, --no-op-offload): accepted
//     and ignored with one notice line, since imq computes on the CPU;
//   - the rest of llama.cpp's options: refused by name ("a llama.cpp option imq does not
//     support"), so a copied command line fails with one clear line.
// parse_llama() replaces CLI11's parse() in a command: it also spells llama.cpp's one-dash
// long names (-ngl, -ub ...) the way CLI11 reads them.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include "imq/model.h"
#include "log.h"

namespace imq::cli {

struct CommonFlags {
  // Which of the flags the command declares itself (so they are not declared twice).
  struct Own {
    bool verbosity = false;  // imq imatrix's --verbosity (llama-imatrix semantics)
  };

  int threads_batch = 0;                 // -tb: threads when -t is not given
  bool no_mmap = false, mlock = false;   // --no-mmap, --mlock
  std::string numa;                      // --numa: accepted, no effect (no NUMA placement)
  std::optional<int64_t> seed;           // -s: generate's sampling (nothing else is random)
  std::string cache_type_k = "f16", cache_type_v = "f16";  // -ctk, -ctv: f16 or f32
  bool no_warmup = false;                // accepted; imq has no warm-up run to skip
  bool no_repack = false;
  std::string ggml_cpu_name = "avx2";    // --ggml-cpu: whose llama.cpp build to reproduce                // -nr: accepted; imq keeps its one product per type
  int verbosity = Log::kInfo;            // -lv
  bool log_disable = false;
  std::string log_file;
  std::string flash_attn;                // -fa: on|off|auto, checked, then ignored
  std::vector<std::string> accelerator;  // accelerator flags as typed (for the notice)
  // Set by add_common_flags: sinks for the ignored values, and whether the command owns -lv.
  std::string ignored_value;
  bool ignored_flag = false, owns_verbosity = false;

  // -t if given (> 0), else -tb, else 0 (all cores).
  int threads(int t) const { return t > 0 ? t : threads_batch; }
  model::LoadOptions load_options() const;
  bool f16_keys() const { return cache_type_k == "f16"; }
  bool f16_values() const { return cache_type_v == "f16"; }
  model::GgmlCpu ggml_cpu() const {
    return ggml_cpu_name == "avx512-bf16" ? model::GgmlCpu::Avx512Bf16 : model::GgmlCpu::Avx2;
  }
  std::string products = "exact";        // --products: exact or fast
  bool exact_products() const { return products != "fast"; }

  // After parsing: checks the values (one-line imq::Error), configures `log` (unless the
  // command owns --verbosity) and prints the accelerator notice through it.
  void apply(Log& log) const;
};

// Declares the common flags on `app` in the "llama.cpp common options" group.
void add_common_flags(CLI::App& app, CommonFlags& flags, CommonFlags::Own own = {});

// Loads a model as the flags say: --no-mmap reads it, --mlock locks it (a failure to lock is
// one warning line, not an error).
std::unique_ptr<model::Model> load_model(const std::string& path, const CommonFlags& flags,
                                         const Log& log);

// Parses argv[first..] into `app` as llama.cpp's tools read their command lines. `tool` names
// the llama.cpp program the command stands in for ("llama-imatrix"), for the errors. `flags`
// is the command's CommonFlags, or nullptr for a tool that takes none (llama-quantize and
// llama-tokenize have their own parsers). Returns nullopt to go on, or the exit code (0 after
// --help). Throws imq::Error, one line, for a flag the command does not take.
std::optional<int> parse_llama(CLI::App& app, int argc, char** argv, int first,
                               std::string_view tool, CommonFlags* flags);

// What llama.cpp makes of a flag imq does not declare (for tests and errors).
enum class LlamaFlag { kUnknown, kCommon, kOther };
LlamaFlag classify_llama_flag(std::string_view name);

}  // namespace imq::cli
