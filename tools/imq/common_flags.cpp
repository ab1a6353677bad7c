#include "common_flags.h"

#include <algorithm>
#include <cctype>
#include <utility>

#include <fmt/format.h>

#include "core/mapped_file.h"
#include "imq/error.h"
#include "imq/gguf.h"

namespace imq::cli {
namespace {

constexpr std::string_view kGroup = "llama.cpp common options";

// llama.cpp's one-dash long names, which CLI11 would read as bundled short flags, and the
// long names imq declares them under.
constexpr std::pair<std::string_view, std::string_view> kOneDash[] = {
    {"-tb", "--threads-batch"}, {"-ngl", "--n-gpu-layers"}, {"-fa", "--flash-attn"},
    {"-dev", "--device"},       {"-sm", "--split-mode"},    {"-ts", "--tensor-split"},
    {"-mg", "--main-gpu"},      {"-nkvo", "--no-kv-offload"}, {"-ctk", "--cache-type-k"},
    {"-ctv", "--cache-type-v"}, {"-lv", "--verbosity"},      {"-ub", "--ubatch-size"},
    {"-ofreq", "--output-frequency"}, {"-nr", "--no-repack"},
};

constexpr std::string_view kAccelerator[] = {
    "-ngl", "--n-gpu-layers", "--gpu-layers", "-fa", "--flash-attn", "-dev", "--device",
    "-sm", "--split-mode", "-ts", "--tensor-split", "-mg", "--main-gpu", "-nkvo",
    "--no-kv-offload", "--no-op-offload",
};

// llama.cpp's common parameters that imq implements somewhere (the group above, and the
// per-command -t -c -b -ub): refused by name on a tool whose llama.cpp twin has its own
// parser without them (llama-quantize, llama-tokenize).
constexpr std::string_view kCommon[] = {
    "-t", "--threads", "-tb", "--threads-batch", "-c", "--ctx-size", "-b", "--batch-size",
    "-ub", "--ubatch-size", "--no-mmap", "--mlock", "--numa", "-s", "--seed", "-ctk",
    "--cache-type-k", "-ctv", "--cache-type-v", "--no-warmup", "-lv", "--verbosity",
    "--log-disable", "--log-file", "-nr", "--no-repack",
};

// Other llama.cpp options people copy from guides, which no imq command implements.
constexpr std::string_view kOther[] = {
    "-C", "--cpu-mask", "-Cr", "--cpu-range", "--cpu-strict", "--prio", "--poll", "-Cb",
    "--cpu-mask-batch", "-Crb", "--cpu-range-batch", "--keep", "--swa-full", "--no-perf",
    "-e", "--escape", "-r", "--reverse-prompt", "-sp", "--special", "-cnv", "--conversation",
    "-no-cnv", "--no-conversation", "-i", "--interactive", "-if", "--interactive-first",
    "--in-prefix", "--in-suffix", "--samplers", "--min-p", "--typical", "--repeat-last-n",
    "--repeat-penalty", "--presence-penalty", "--frequency-penalty", "--mirostat",
    "--grammar", "--grammar-file", "-j", "--json-schema", "--rope-scaling", "--rope-scale",
    "--rope-freq-base", "--rope-freq-scale", "--yarn-orig-ctx", "--yarn-ext-factor",
    "--yarn-attn-factor", "--yarn-beta-slow", "--yarn-beta-fast", "-gan", "--grp-attn-n",
    "-gaw", "--grp-attn-w", "-dt", "--defrag-thold", "-np", "--parallel", "-ns",
    "--sequences", "-cb", "--cont-batching", "-nocb", "--no-cont-batching", "-kvu",
    "--kv-unified", "--list-devices", "-ot", "--override-tensor", "-cmoe", "--cpu-moe",
    "-ncmoe", "--n-cpu-moe", "--check-tensors", "--override-kv", "--lora", "--lora-scaled",
    "--control-vector", "--control-vector-scaled", "-mu", "--model-url", "-hf", "-hfr",
    "--hf-repo", "-hff", "--hf-file", "-hft", "--hf-token", "--log-colors", "--log-prefix",
    "--log-timestamps", "--offline", "-md", "--model-draft", "-ngld", "--gpu-layers-draft",
    "--mmproj", "--image", "--jinja", "--chat-template", "--pooling", "--embedding",
    "--hellaswag", "--hellaswag-tasks", "--winogrande", "--winogrande-tasks",
    "--multiple-choice", "--multiple-choice-tasks", "--ppl-stride", "--ppl-output-type",
    "--keep-split", "--prune-layers",
};

template <size_t N>
bool listed(const std::string_view (&list)[N], std::string_view name) {
  return std::find(std::begin(list), std::end(list), name) != std::end(list);
}

bool is_number(std::string_view a) {
  size_t i = a[0] == '-' ? 1 : 0;
  return i < a.size() && (std::isdigit(static_cast<unsigned char>(a[i])) || a[i] == '.');
}

// llama.cpp's K/V cache types (kv_cache_types in common/arg.cpp); imq's cache holds the first two.
void check_cache_type(const char* flag, const std::string& v) {
  if (v == "f16" || v == "f32") return;
  constexpr std::string_view known[] = {"bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1"};
  throw_error("{} {}: {}imq's K/V cache holds f16 (the default) or f32", flag, v,
              listed(known, v) ? "" : "not a llama.cpp cache type; ");
}

}  // namespace

LlamaFlag classify_llama_flag(std::string_view name) {
  if (listed(kCommon, name) || listed(kAccelerator, name)) return LlamaFlag::kCommon;
  if (listed(kOther, name)) return LlamaFlag::kOther;
  return LlamaFlag::kUnknown;
}

model::LoadOptions CommonFlags::load_options() const {
  model::LoadOptions o;
  o.mmap = !no_mmap;
  return o;
}

void add_common_flags(CLI::App& app, CommonFlags& f, CommonFlags::Own own) {
  const std::string g(kGroup);
  auto last = [&](CLI::Option* o) {
    o->group(g)->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    return o;
  };
  last(app.add_option("--threads-batch", f.threads_batch,
                      "threads (also -tb): imq uses one thread count, -t when given, else this"));
  last(app.add_flag("--no-mmap", f.no_mmap, "read the model into memory instead of mapping it"));
  last(app.add_flag("--mlock", f.mlock, "lock the model in RAM (a failure is one warning)"));
  last(app.add_option("--numa", f.numa, "distribute|isolate|numactl: accepted, no effect "
                      "(imq places no memory by NUMA node)"));
  last(app.add_option("-s,--seed", f.seed, "random seed: generate's sampling (default 0; < 0: a random seed); "
                      "nothing else in imq is random"));
  last(app.add_option("--cache-type-k", f.cache_type_k, "K cache type (also -ctk): f16 or f32"))
      ->capture_default_str();
  last(app.add_option("--cache-type-v", f.cache_type_v, "V cache type (also -ctv): f16 or f32"))
      ->capture_default_str();
  last(app.add_flag("--no-warmup", f.no_warmup, "accepted, no effect: imq runs no warm-up pass"));
  last(app.add_option("--ggml-cpu", f.ggml_cpu_name,
                      "imq: the llama.cpp CPU build whose numbers to reproduce to the bit: avx2 or "
                      "avx512-bf16 (the system_info line of its logs)"))
      ->check(CLI::IsMember({"avx2", "avx512-bf16"}))
      ->capture_default_str();
  last(app.add_option("--products", f.products,
                      "imq: exact: each weight type's product as that llama.cpp build computes it "
                      "(its numbers to the bit); fast: the same rounded activations through SGEMM "
                      "on float tiles, only the order of float sums differs (K-quants, Q8_0: "
                      "faster; bench/README.md)"))
      ->check(CLI::IsMember({"exact", "fast"}))
      ->capture_default_str();
  last(app.add_flag("--no-repack", f.no_repack,
                    "(also -nr) accepted, no effect: imq computes each type's products one way "
                    "(kernels/ggml_exact.h) with or without llama.cpp's repacked weights"));
  f.owns_verbosity = own.verbosity;
  if (!own.verbosity)
    last(app.add_option("--verbosity", f.verbosity, "log threshold (also -lv): 2 warnings, 3 info, 4 debug"))
        ->capture_default_str();
  else if (CLI::Option* v = app.get_option_no_throw("--verbosity"))
    v->group(g);  // the command's own, listed with the others
  last(app.add_flag("--log-disable", f.log_disable, "no log lines on stderr"));
  last(app.add_option("--log-file", f.log_file, "also write the log lines to this file"));
  // Accelerator flags: accepted and dropped; apply() prints one notice.
  const std::string cpu = ": ignored, imq computes on the CPU";
  last(app.add_option("--n-gpu-layers,--gpu-layers", f.ignored_value, "layers to offload (also -ngl)" + cpu));
  last(app.add_option("--flash-attn", f.flash_attn, "[on|off|auto] (also -fa; bare -fa: on)" + cpu));
  last(app.add_option("--device", f.ignored_value, "devices to offload to (also -dev)" + cpu));
  last(app.add_option("--split-mode", f.ignored_value, "multi-GPU split (also -sm)" + cpu));
  last(app.add_option("--tensor-split", f.ignored_value, "multi-GPU proportions (also -ts)" + cpu));
  last(app.add_option("--main-gpu", f.ignored_value, "GPU index (also -mg)" + cpu));
  last(app.add_flag("--no-kv-offload", f.ignored_flag, "keep the KV cache off the GPU (also -nkvo)" + cpu));
  last(app.add_flag("--no-op-offload", f.ignored_flag, "no op offload to the GPU" + cpu));
}

void CommonFlags::apply(Log& log) const {
  check_cache_type("-ctk/--cache-type-k", cache_type_k);
  check_cache_type("-ctv/--cache-type-v", cache_type_v);
  if (!numa.empty() && numa != "distribute" && numa != "isolate" && numa != "numactl")
    throw_error("--numa {}: expected distribute, isolate or numactl", numa);
  if (!flash_attn.empty() && flash_attn != "on" && flash_attn != "off" && flash_attn != "auto")
    throw_error("-fa/--flash-attn {}: expected on, off or auto", flash_attn);
  if (!log_file.empty()) log.set_file(log_file);
  log.set_console(!log_disable);
  if (!owns_verbosity) log.set_verbosity(verbosity);
  if (accelerator.empty()) return;
  std::vector<std::string> names;
  for (const auto& a : accelerator)
    if (std::find(names.begin(), names.end(), a) == names.end()) names.push_back(a);
  log.warn("imq: note: {} ignored: imq computes on the CPU; use -t for threads", fmt::join(names, ", "));
}

std::unique_ptr<model::Model> load_model(const std::string& path, const CommonFlags& flags,
                                         const Log& log) {
  auto model = model::Model::load(path, flags.load_options());
  const auto bytes = model->file().bytes();
  if (flags.no_mmap) log.debug("imq: read {} into memory ({} bytes, --no-mmap)", path, bytes.size());
  if (flags.mlock) {
    const std::string why = lock_in_memory(bytes);
    if (why.empty())
      log.debug("imq: locked {} ({} bytes) in memory (--mlock)", path, bytes.size());
    else
      log.warn("imq: warning: --mlock {}: {}; going on unlocked", path, why);
  }
  return model;
}

std::optional<int> parse_llama(CLI::App& app, int argc, char** argv, int first,
                               std::string_view tool, CommonFlags* flags) {
  std::vector<std::string> args;
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") {  // the rest are positional
      for (; i < argc; ++i) args.emplace_back(argv[i]);
      break;
    }
    if (a.size() < 2 || a[0] != '-' || is_number(a)) {
      args.push_back(std::move(a));
      continue;
    }
    const size_t eq = a.find('=');
    const std::string name = a.substr(0, eq), rest = eq == std::string::npos ? "" : a.substr(eq);
    std::string declared = name;
    for (const auto& [one_dash, long_name] : kOneDash)
      if (name == one_dash && app.get_option_no_throw(std::string(long_name))) declared = long_name;
    if (!app.get_option_no_throw(declared)) {
      const LlamaFlag kind = classify_llama_flag(name);
      if (kind == LlamaFlag::kCommon && !flags)
        throw_error("{} is a llama.cpp common option, which {} does not take either", name, tool);
      if (kind != LlamaFlag::kUnknown) throw_error("{} is a llama.cpp option imq does not support", name);
      args.push_back(std::move(a));  // CLI11 reads it (a short-option bundle) or reports it
      continue;
    }
    if (flags && listed(kAccelerator, name)) flags->accelerator.push_back(name);
    args.push_back(declared + rest);
    // -fa's value is optional (older llama.cpp: a bare flag): without one, it means on. The
    // commands that take it have no positional arguments, so a word after it is its value.
    if (declared == "--flash-attn" && rest.empty() && (i + 1 >= argc || argv[i + 1][0] == '-'))
      args.emplace_back("on");
  }
  std::reverse(args.begin(), args.end());  // CLI11 takes the arguments last first
  app.allow_extras();
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  for (const auto& extra : app.remaining()) {
    if (extra.size() > 1 && extra[0] == '-' && !is_number(extra)) throw_error("unknown option {}", extra);
    throw_error("unexpected argument '{}'", extra);
  }
  return std::nullopt;
}

}  // namespace imq::cli
