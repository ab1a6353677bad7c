// imq quantize [options] INPUT.gguf [OUTPUT.gguf] TYPE [NTHREADS]: llama-quantize's command
// line, plan and output; prints llama-quantize's per-tensor lines and totals.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "commands.h"
#include "imq/hf.h"
#include "common_flags.h"
#include "imq/error.h"
#include "imq/ggml_types.h"
#include "imq/gptq.h"
#include "imq/mix_tune.h"
#include "imq/quantize.h"

#include "progress.h"
#include "stop_signals.h"
#include "text_file.h"

namespace imq::cli {

namespace {

using namespace imq::quantize;
using Clock = std::chrono::steady_clock;

constexpr double kMiB = 1024.0 * 1024.0;

std::string type_name(GgmlType t) {
  auto info = ggml_type_info(t);
  return info ? std::string(info->name) : ggml_type_display_name(t);
}

std::string tensor_line(const Plan& plan, size_t i) {
  const TensorPlan& t = plan.tensors[i];
  std::string s = fmt::format("[{:4}/{:4}] {:<36} - [{:6}, {:6}, {:6}, {:6}], type = {:>6}, ", i + 1,
                              plan.tensors.size(), t.name, t.ne[0], t.ne[1], t.ne[2], t.ne[3],
                              type_name(t.src_type));
  if (!t.quantize) return s + fmt::format("size = {:8.3f} MiB", double(t.src_bytes) / kMiB);
  return s + fmt::format("converting to {} .. size = {:8.2f} MiB -> {:8.2f} MiB",
                         type_name(t.dst_type), double(t.src_bytes) / kMiB,
                         double(t.dst_bytes) / kMiB);
}

void print_header(const Plan& plan) {
  if (plan.imatrix) {
    std::string ds;
    for (const auto& d : plan.imatrix->datasets) ds += fmt::format("{}'{}'", ds.empty() ? "" : ", ", d);
    std::printf("imatrix datasets=[%s]\n", ds.c_str());
    std::printf("loaded %zu importance matrix entries from %s computed on %u chunks\n",
                plan.imatrix->n_entries, plan.imatrix->file.c_str(), plan.imatrix->chunk_count);
  }
  for (const auto& w : plan.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  for (const auto& t : plan.tensors) {
    if (!t.fallback_from) continue;
    const uint32_t block = ggml_type_info(*t.fallback_from)->block_size;
    std::fprintf(stderr, "warning: %-36s - ncols %6lld not divisible by %u (required for type %7s)%s -> falling back to %7s\n",
                 t.name.c_str(), (long long)t.ne[0], block, type_name(*t.fallback_from).c_str(),
                 t.dst_type == GgmlType::F16 ? " (WARNING: must use F16 due to unusual shape)" : "",
                 type_name(t.dst_type).c_str());
  }
}

void print_note(const TensorPlan& t) {
  if (t.importance_use == ImportanceUse::kMissing)
    std::printf("====== did not find weights for %s\n", t.name.c_str());
}

void print_totals(const Plan& plan) {
  const double n = double(plan.n_elements);
  std::printf("model size  = %8.2f MiB (%.2f BPW)\n", double(plan.src_bytes) / kMiB,
              double(plan.src_bytes) * 8 / n);
  std::printf("quant size  = %8.2f MiB (%.2f BPW)\n", double(plan.dst_bytes) / kMiB,
              double(plan.dst_bytes) * 8 / n);
  if (plan.n_fallback > 0)
    std::printf("WARNING: %zu of %zu tensor(s) required fallback quantization\n", plan.n_fallback,
                plan.tensors.size());
}

}  // namespace

int cmd_quantize(int argc, char** argv) {
  CLI::App app{"Quantize a GGUF model like llama-quantize.\n"
               "usage: imq quantize [options] INPUT.gguf [OUTPUT.gguf] TYPE [NTHREADS]\n"
               "TYPE: Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q2_K_S Q3_K_S Q3_K_M Q3_K_L IQ4_NL IQ4_XS Q4_K_S "
               "Q4_K_M Q5_K_S Q5_K_M Q6_K Q8_0 F16 BF16 F32, imq's Q3_HIFI Q3_HIFI_M (or a numeric ftype)",
               "imq quantize"};
  std::vector<std::string> positional;
  std::string imatrix, output_type, embd_type, search = "reference", q3_hifi_outliers = "saving";
  std::vector<std::string> include, exclude, tensor_types;
  std::string tensor_type_file;
  bool pure = false, leave_output = false, requantize = false, dry_run = false;
  app.add_option("--imatrix", imatrix, "importance matrix: GGUF imatrix or legacy .dat");
  app.add_option("--include-weights", include, "use the imatrix only for tensors whose name contains this (repeatable)")
      ->expected(1)->allow_extra_args(false)->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app.add_option("--exclude-weights", exclude, "do not use the imatrix for tensors whose name contains this (repeatable)")
      ->expected(1)->allow_extra_args(false)->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app.add_option("--output-tensor-type", output_type, "type of output.weight (e.g. q8_0)");
  app.add_option("--token-embedding-type", embd_type, "type of token_embd.weight");
  app.add_option("--tensor-type", tensor_types, "PATTERN=TYPE: tensors whose name matches the regex get TYPE (repeatable; first match wins)")
      ->expected(1)->allow_extra_args(false)->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app.add_option("--tensor-type-file", tensor_type_file, "file of PATTERN=TYPE entries (as --tensor-type, applied after them)");
  std::string tune_text, tune_save;
  int64_t tune_chunks = 8, tune_ctx = 0;
  bool tune_per_tensor = false;
  app.add_option("--tune-mix", tune_text, "imq: choose each tensor kind's type by its measured KL divergence on this calibration text, at no more bytes than TYPE's mix");
  app.add_option("--tune-chunks", tune_chunks, "--tune-mix: calibration chunks to measure on (default 8)");
  app.add_option("--tune-ctx", tune_ctx, "--tune-mix: tokens per chunk (default: min(512, training context))");
  app.add_flag("--tune-per-tensor", tune_per_tensor, "--tune-mix: one type per tensor instead of per tensor kind (n_layer times slower)");
  app.add_option("--tune-save", tune_save, "--tune-mix: also write the chosen types as a --tensor-type-file");
  std::string calib_text;
  int64_t calib_ctx = 0, calib_chunks = -1;
  double damp = 0.01;
  int variants = gptq::Options{}.variants;
  bool no_act_order = false, no_correct = false;
  app.add_option("--calibration-file", calib_text, "imq: error-compensated quantization (GPTQ into the same block types): run the model layer by layer over this text and push each weight's rounding error onto the weights not yet rounded");
  app.add_option("--calibration-ctx", calib_ctx, "--calibration-file: tokens per chunk (default: min(512, training context))");
  app.add_option("--calibration-chunks", calib_chunks, "--calibration-file: chunks to use, at most what the text holds (default: 32768 tokens' worth; time grows in proportion)");
  app.add_option("--damp", damp, "--calibration-file: H_ii += DAMP * mean(diag H) (default 0.01)");
  app.add_option("--block-candidates", variants, "--calibration-file: parameter sets each block tries, keeping the one whose error-compensated rounding costs least (default: all the type has; 1: the codec's search only)");
  app.add_flag("--no-act-order", no_act_order, "--calibration-file: quantize columns in their stored order (default: blocks and columns by importance)");
  app.add_flag("--no-correction", no_correct, "--calibration-file: fit each layer to its own outputs on the quantized inputs, not to the full-precision model's (half the passes)");
  app.add_flag("--pure", pure, "no k-quant mixes: every quantized tensor gets the default type");
  app.add_flag("--leave-output-tensor", leave_output, "keep output.weight unquantized");
  app.add_flag("--allow-requantize", requantize, "allow quantized input tensors (dequantized first)");
  app.add_flag("--dry-run", dry_run, "plan only: print the types and sizes, write nothing");
  app.add_option("--q3-hifi-outliers", q3_hifi_outliers, "Q3_HIFI outliers: saving (imq's: the weights whose removal lowers the block's weighted error most), magnitude (the fork's: largest |x|*w) or joint (imq's earlier search)");
  app.add_option("--search", search, "block search: reference (llama.cpp's, byte-exact) or imq (lower weighted error, same format)");
  app.add_option("args", positional, "INPUT.gguf [OUTPUT.gguf] TYPE [NTHREADS]")->required();
  if (auto rc = parse_llama(app, argc, argv, 1, "llama-quantize", nullptr)) return *rc;
  if (!include.empty() && !exclude.empty())
    throw_error("--include-weights and --exclude-weights cannot be used together");
  if (positional.size() < 2 || positional.size() > 4)
    throw_error("expected INPUT.gguf [OUTPUT.gguf] TYPE [NTHREADS], got {} arguments",
                positional.size());

  // As llama-quantize: the second argument is TYPE when it parses as one, else OUTPUT.
  Options opt;
  const std::string& input = positional[0];
  std::string output, type_arg;
  size_t next = 1;
  const FTypeInfo* ft = nullptr;
  try {
    ft = &parse_ftype(positional[1]);
  } catch (const Error&) {
  }
  if (ft) {
    const size_t slash = input.find_last_of('/');
    output = (slash == std::string::npos ? "" : input.substr(0, slash + 1)) + "ggml-model-" +
             std::string(ft->name) + ".gguf";
    next = 2;
  } else {
    output = positional[1];
    if (positional.size() < 3) throw_error("missing TYPE after the output file {}", output);
    ft = &parse_ftype(positional[2]);
    next = 3;
  }
  int n_threads = int(std::max(1u, std::thread::hardware_concurrency()));
  if (next < positional.size()) {
    try {
      n_threads = std::stoi(positional[next]);
    } catch (const std::exception&) {
      throw_error("NTHREADS '{}' is not a number", positional[next]);
    }
    if (++next < positional.size()) throw_error("unexpected argument '{}'", positional[next]);
  }
  if (n_threads <= 0) n_threads = int(std::max(1u, std::thread::hardware_concurrency()));

  opt.ftype = ft->ftype;
  opt.imatrix_path = imatrix;
  opt.include_weights = include;
  opt.exclude_weights = exclude;
  if (!output_type.empty()) opt.output_tensor_type = parse_tensor_type(output_type);
  if (!embd_type.empty()) opt.token_embedding_type = parse_tensor_type(embd_type);
  for (const auto& t : tensor_types) opt.tensor_types.push_back(parse_tensor_type_override(t));
  if (!tensor_type_file.empty())
    for (auto& o : read_tensor_type_file(tensor_type_file)) opt.tensor_types.push_back(std::move(o));
  opt.pure = pure;
  opt.leave_output_tensor = leave_output;
  opt.allow_requantize = requantize;
  opt.dry_run = dry_run;
  opt.search = parse_search(search);
  opt.q3_hifi_outliers = parse_q3_hifi_outliers(q3_hifi_outliers);

  const auto t0 = Clock::now();
  if (!dry_run) check_output_path(input, output);
  if (!tune_text.empty()) {
    tune::MixTuneOptions to;
    to.n_ctx = tune_ctx;
    to.n_chunks = tune_chunks;
    to.n_threads = n_threads;
    to.text_name = tune_text;
    to.granularity = tune_per_tensor ? tune::Granularity::kTensor : tune::Granularity::kCategory;
    to.log = [](const std::string& s) { std::fprintf(stderr, "%s\n", s.c_str()); };
    const tune::MixTuneResult r =
        tune::tune_mix(input, opt, read_text(tune_text, "the calibration text"), to);
    if (r.kept_standard)
      std::fprintf(stderr, "tune: the tuned mix is not better on the calibration text: keeping %s's rules\n",
                   std::string(ft->name).c_str());
    else
      for (const auto& o : r.overrides)
        std::fprintf(stderr, "tune: --tensor-type '%s=%s'\n", o.pattern.c_str(), type_name(o.type).c_str());
    if (!tune_save.empty() && r.kept_standard)
      std::fprintf(stderr, "tune: %s will be empty (the standard mix needs no overrides)\n", tune_save.c_str());
    if (!tune_save.empty()) tune::write_tensor_type_file(tune_save, r);
    opt.tensor_types.insert(opt.tensor_types.begin(), r.overrides.begin(), r.overrides.end());
  }
  if (!calib_text.empty() && !dry_run) {
    gptq::Options go;
    go.quant = opt;
    go.text_name = calib_text;
    go.n_ctx = calib_ctx;
    go.n_chunks = calib_chunks;
    go.damp = damp;
    go.variants = variants;
    go.act_order = !no_act_order;
    go.correct = !no_correct;
    go.n_threads = n_threads;
    go.log = [](const std::string& s) { std::fprintf(stderr, "%s\n", s.c_str()); };
    Progress progress("error compensation:");
    go.progress = [&](int64_t done, int64_t total) {
      progress.update(uint64_t(done), uint64_t(total), fmt::format("step {}/{}", done, total));
    };
    StopSignals signals;
    go.cancelled = [] { return g_stop != 0; };
    std::printf("quantizing '%s' to '%s' as %s with error compensation from %s\n", input.c_str(),
                output.c_str(), std::string(ft->name).c_str(), calib_text.c_str());
    std::fflush(stdout);
    const Plan plan =
        gptq::quantize_compensated(input, read_text(calib_text, "the calibration text"), output, go);
    progress.clear();
    print_header(plan);
    print_totals(plan);
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    std::printf("wrote %s: %llu bytes; quantize time = %.2f ms (%d threads)\n", output.c_str(),
                (unsigned long long)plan.file_size, ms, n_threads);
    return 0;
  }
  gguf::File model = hf::open_model_file(input);  // GGUF, or an HF folder converted in memory
  Plan plan = make_plan(model, opt);
  std::printf("quantizing '%s' to '%s' as %s%s\n", input.c_str(), output.c_str(),
              std::string(ft->name).c_str(), dry_run ? " (dry run)" : "");
  print_header(plan);

  if (dry_run) {
    for (size_t i = 0; i < plan.tensors.size(); ++i) {
      print_note(plan.tensors[i]);
      std::printf("%s\n", tensor_line(plan, i).c_str());
    }
    print_totals(plan);
    std::printf("output file size = %llu bytes (not written)\n", (unsigned long long)plan.file_size);
    return 0;
  }

  Progress progress("");
  size_t current = 0;
  Callbacks cb;
  cb.tensor_begin = [&](size_t i) { current = i; };
  cb.tensor_done = [&](size_t i) {
    progress.clear();
    print_note(plan.tensors[i]);
    std::printf("%s\n", tensor_line(plan, i).c_str());
    std::fflush(stdout);
  };
  cb.progress = [&](uint64_t done, uint64_t total) {
    progress.update(done, total, fmt::format("[{}/{}]", current + 1, plan.tensors.size()));
  };
  StopSignals signals;  // SIGINT/SIGTERM stop between tensors, so the temporary file is removed
  cb.cancelled = [] { return g_stop != 0; };
  try {
    write_quantized(model, plan, output, n_threads, cb);
  } catch (const Error& e) {
    if (!g_stop) throw;
    progress.clear();
    throw Stopped(fmt::format("stopped by signal {}: {}", int(g_signal), e.what()));
  }
  progress.clear();
  print_totals(plan);
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  std::printf("wrote %s: %llu bytes; quantize time = %.2f ms (%d threads)\n", output.c_str(),
              (unsigned long long)plan.file_size, ms, n_threads);
  return 0;
}

}  // namespace imq::cli
