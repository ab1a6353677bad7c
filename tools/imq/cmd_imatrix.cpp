// imq imatrix: llama-imatrix's flags and modes, plus short subcommands.
//
//   imq imatrix -m MODEL -f TEXT [-o imatrix.gguf] ...       collect (with --in-file: continue)
//   imq imatrix --in-file A --in-file B [-o OUT]             combine only (no -f)
//   imq imatrix --in-file A --output-format dat -o A.dat     convert
//   imq imatrix --in-file A --show-statistics [--json]       statistics
//   imq imatrix merge A B ... -o OUT | convert A -o B | stats A [--json]
//   imq imatrix --in-file A [--in-file B] --report R.html   HTML report (two inputs: compared)
//   imq imatrix stats A [--compare B] --report R.html
//
// Unlike llama-imatrix, -m is only needed to collect (and to read a .cimatrix's module names).
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "commands.h"
#include "cmd_imatrix.h"
#include "imq/error.h"
#include "imq/imatrix.h"
#include "imatrix/report.h"

namespace imq::cli {
namespace {

using imatrix::Format;
using imatrix::Imatrix;

// Options shared by every mode that reads imatrix files.
struct FileOptions {
  std::vector<std::string> in_files;
  std::string output = "imatrix.gguf";
  std::string output_format;  // "" = by mode (llama mode: gguf; subcommands: by extension)
  uint32_t chunk_size = 512;
  bool chunk_size_given = false;
  bool allow_chunk_size_mismatch = false;
  std::string model_path;  // for .cimatrix module names
  int64_t n_expert = 0;
  int verbosity = 3;
  const Log* out = nullptr;  // where flush_log prints (nullptr: stderr)
  // Progress lines, printed once the command has succeeded, so that a failure prints only
  // its one error line.
  mutable std::vector<std::string> log;
};

// --in-file may be repeated and each may be a comma-separated list.
std::vector<std::string> split_lists(const std::vector<std::string>& v) {
  std::vector<std::string> out;
  for (const auto& s : v) {
    size_t start = 0;
    for (;;) {
      const size_t comma = s.find(',', start);
      std::string part = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (!part.empty()) out.push_back(std::move(part));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  return out;
}

void info(const FileOptions& o, std::string msg) {
  if (o.verbosity >= 1) o.log.push_back(std::move(msg));
}

void flush_log(const FileOptions& o) {
  for (const auto& l : o.log) {
    if (o.out) o.out->print(l);
    else std::fprintf(stderr, "%s\n", l.c_str());
  }
  o.log.clear();
}

void warn(const FileOptions& o, const std::string& msg) { o.log.push_back("warning: " + msg); }

// Reads every input. Legacy inputs (.dat, .cimatrix) are scaled with -c when given, else with
// the chunk size of the GGUF inputs, else 512 (llama-imatrix's default).
std::vector<imatrix::MergeInput> read_inputs(const FileOptions& o, bool allow_non_finite) {
  if (o.in_files.empty()) throw_error("no input imatrix: give --in-file FILE");
  std::vector<Format> formats;
  uint32_t gguf_chunk = 0;
  std::vector<imatrix::MergeInput> in;
  for (const auto& p : o.in_files) formats.push_back(imatrix::detect_format(p));
  imatrix::ReadOptions ro;
  ro.allow_non_finite = allow_non_finite;
  ro.model_path = o.model_path;
  ro.n_expert = o.n_expert;
  for (size_t i = 0; i < o.in_files.size(); ++i) {
    if (formats[i] != Format::Gguf) continue;
    info(o, fmt::format("loading imatrix from '{}'", o.in_files[i]));
    in.push_back({o.in_files[i], imatrix::read_gguf(o.in_files[i], ro)});
    if (!gguf_chunk) gguf_chunk = in.back().data.chunk_size;
  }
  ro.chunk_size = o.chunk_size_given ? o.chunk_size : gguf_chunk ? gguf_chunk : o.chunk_size;
  std::vector<imatrix::MergeInput> ordered;
  size_t next_gguf = 0;
  for (size_t i = 0; i < o.in_files.size(); ++i) {
    if (formats[i] == Format::Gguf) {
      ordered.push_back(std::move(in[next_gguf++]));
      continue;
    }
    info(o, fmt::format("loading imatrix from '{}' ({} format, {} tokens per call)", o.in_files[i],
                        imatrix::format_name(formats[i]), ro.chunk_size));
    ordered.push_back({o.in_files[i], imatrix::load(o.in_files[i], ro)});
  }
  return ordered;
}

Imatrix combine(const FileOptions& o) {
  auto inputs = read_inputs(o, false);
  imatrix::MergeOptions mo;
  mo.allow_chunk_size_mismatch = o.allow_chunk_size_mismatch;
  if (o.chunk_size_given) {
    mo.chunk_size = o.chunk_size;
    for (const auto& in : inputs)
      if (in.data.chunk_size && in.data.chunk_size != o.chunk_size)
        warn(o, fmt::format("{} was collected with {} tokens per chunk; labelling the output with -c {}",
                         in.path, in.data.chunk_size, o.chunk_size));
  }
  return imatrix::merge(inputs, mo);
}

Format output_format(const FileOptions& o, bool by_extension) {
  if (!o.output_format.empty()) return imatrix::parse_format(o.output_format);
  if (by_extension && o.output.ends_with(".dat")) return Format::Dat;
  return Format::Gguf;
}

void write_output(const Imatrix& m, const FileOptions& o, Format f) {
  if (f == Format::Gguf && !o.output.ends_with(".gguf"))
    warn(o, fmt::format("writing the GGUF imatrix format to {}, a name not ending in .gguf "
                     "(--output-format dat writes the legacy format)", o.output));
  for (const auto& c : imatrix::coverage_issues(m)) warn(o, imatrix::describe(c));
  for (const auto& name : imatrix::save(m, o.output, f))
    warn(o, fmt::format("{} has no data; the .dat format cannot hold it, it was left out", name));
  info(o, fmt::format("saved imatrix ({} entries, {} chunks of {} tokens) to '{}'", m.entries.size(),
                      m.chunk_count, m.chunk_size, o.output));
  flush_log(o);
}

int show_statistics(const FileOptions& o, bool json) {
  if (o.in_files.size() != 1)
    throw_error("statistics need exactly one input imatrix ({} given)", o.in_files.size());
  auto inputs = read_inputs(o, true);
  const Imatrix& m = inputs[0].data;
  const auto stats = imatrix::compute_statistics(m);
  if (json) {
    std::fputs(imatrix::statistics_json(stats, m, o.in_files[0]).c_str(), stdout);
  } else {
    std::fputs(imatrix::format_statistics(stats, o.in_files[0]).c_str(), stdout);
  }
  std::fflush(stdout);
  for (const auto& c : imatrix::coverage_issues(m)) warn(o, imatrix::describe(c));
  flush_log(o);
  return 0;
}

// The HTML report of the first input, compared with the second when there are two.
int write_report(const FileOptions& o, const std::string& path) {
  if (o.in_files.empty() || o.in_files.size() > 2)
    throw_error("--report takes one input imatrix, or two to compare ({} given)", o.in_files.size());
  auto inputs = read_inputs(o, true);
  imatrix::ReportOptions ro;
  ro.name_a = inputs[0].path;
  if (inputs.size() > 1) ro.name_b = inputs[1].path;
  imatrix::write_report(path, inputs[0].data, inputs.size() > 1 ? &inputs[1].data : nullptr, ro);
  for (const auto& in : inputs)
    for (const auto& c : imatrix::coverage_issues(in.data)) warn(o, imatrix::describe(c));
  info(o, fmt::format("wrote the report to '{}'", path));
  flush_log(o);
  return 0;
}

void add_file_options(CLI::App& app, FileOptions& o) {
  // As in llama.cpp, a repeated option takes its last value (lists are declared TakeAll).
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("-c,--ctx-size", o.chunk_size,
                 "tokens per chunk: scales legacy .dat/.cimatrix inputs and relabels the output "
                 "(default: the inputs' own, else 512)");
  app.add_flag("--allow-chunk-size-mismatch", o.allow_chunk_size_mismatch,
               "merge inputs collected with different chunk sizes");
  app.add_option("-m,--model", o.model_path, "model GGUF (to map .cimatrix module names)");
  app.add_option("--n-expert", o.n_expert, ".cimatrix without -m: experts per MoE layer");
  app.add_option("--verbosity", o.verbosity, "log level (also -lv); 0: results only")->capture_default_str();
}

// llama.cpp spells some options with one dash and several letters, which CLI11 reads as
// bundled short flags: rewrite them to their long names.
std::vector<std::string> normalized_args(int argc, char** argv, int first) {
  std::vector<std::string> args;
  for (int i = argc - 1; i >= first; --i) {
    std::string a = argv[i];
    if (a == "-lv") a = "--verbosity";
    else if (a == "-ofreq") a = "--output-frequency";
    else if (a == "-ub") a = "--ubatch-size";
    args.push_back(std::move(a));
  }
  return args;
}

int parse_or_exit(CLI::App& app, std::vector<std::string> args) {
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? -1 : 1;  // -1: --help printed, stop with 0
  }
  return 0;
}

int subcommand(const std::string& name, int argc, char** argv) {
  FileOptions o;
  bool json = false;
  std::vector<std::string> files;
  std::string report, compare;
  CLI::App app{"", "imq imatrix " + name};
  if (name == "merge") {
    app.description("sum importance matrices (raw sums and token counts) into one file");
    app.add_option("files", files, "input imatrices (GGUF, .dat, .cimatrix)")
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    app.add_option("--in-file", files, "input imatrix (repeatable, comma lists)")
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  } else if (name == "convert") {
    app.description("convert an importance matrix between GGUF and the legacy .dat format");
    app.add_option("file", files, "input imatrix")->required()->expected(1);
  } else {
    app.description("print llama-imatrix's statistics of an importance matrix");
    app.add_option("file", files, "input imatrix")->required()->expected(1);
    app.add_flag("--json", json, "print JSON instead of the tables");
    app.add_option("--report", report, "write an HTML report to this file instead");
    app.add_option("--compare", compare, "with --report: compare with this imatrix (same model)");
  }
  add_file_options(app, o);
  if (name != "stats") {
    app.add_option("-o,--output-file", o.output, "output file")->required();
    app.add_option("--output-format", o.output_format, "gguf or dat (default: by the -o name)")
        ->check(CLI::IsMember({"gguf", "dat"}));
  }
  if (int rc = parse_or_exit(app, normalized_args(argc, argv, 2))) return rc < 0 ? 0 : rc;
  o.chunk_size_given = app.count("-c") > 0;
  o.in_files = split_lists(files);
  if (name == "merge" && o.in_files.empty()) throw_error("merge: no input imatrix given");
  if (!compare.empty() && report.empty()) throw_error("--compare needs --report FILE");
  if (!compare.empty()) o.in_files.push_back(compare);
  if (name == "stats") return report.empty() ? show_statistics(o, json) : write_report(o, report);
  write_output(combine(o), o, output_format(o, true));
  return 0;
}

}  // namespace

int cmd_imatrix(int argc, char** argv) {
  if (argc >= 2) {
    const std::string sub = argv[1];
    if (sub == "merge" || sub == "convert" || sub == "stats") return subcommand(sub, argc, argv);
  }
  CLI::App app{"collect, merge, convert and inspect importance matrices (llama-imatrix flags).\n"
               "Also: imq imatrix merge A B -o C | convert A -o B | stats A [--json]",
               "imq imatrix"};
  FileOptions o;
  CollectCommand c;
  imatrix::CollectOptions& co = c.opt;
  std::vector<std::string> in_files;
  std::string report;
  bool show_stats = false, json = false, ppl = false;
  int64_t output_frequency = co.output_frequency;
  add_file_options(app, o);
  app.add_option("-f,--file", c.text_path, "calibration text to collect over");
  app.add_option("-o,--output-file", o.output, "output imatrix")->capture_default_str();
  app.add_option("--output-format", o.output_format, "gguf (default) or dat")->check(CLI::IsMember({"gguf", "dat"}));
  app.add_option("--in-file", in_files, "imatrix to start from / combine (repeatable, comma lists)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app.add_flag("--show-statistics", show_stats, "print statistics of the one --in-file and exit");
  app.add_flag("--json", json, "statistics as JSON");
  app.add_option("--report", report, "write an HTML report of the --in-file (two: compared) or of the "
                 "collected output to this file");
  app.add_option("-b,--batch-size", c.n_batch, "logical batch size")->capture_default_str();
  app.add_option("--ubatch-size", co.n_ubatch, "tokens per forward pass (also -ub)")->capture_default_str();
  app.add_option("-t,--threads", co.n_threads, "threads (default: all cores)");
  app.add_option("--chunk,--from-chunk", co.first_chunk, "skip this many chunks of the text")->capture_default_str();
  app.add_option("--chunks", co.n_chunks, "most chunks to process (-1: all)")->capture_default_str();
  app.add_option("--output-frequency", output_frequency, "save the output every N chunks (also -ofreq)")
      ->capture_default_str();
  app.add_option("--save-frequency", co.save_frequency, "also save OUT.at_N every N chunks (0: never)")
      ->capture_default_str();
  app.add_flag("--process-output", co.process_output, "also collect output.weight");
  app.add_flag("--no-ppl", c.no_ppl, "do not print perplexity");
  app.add_flag("--ppl", ppl, "print perplexity (default)");
  app.add_flag("--parse-special", c.parse_special, "parse special-token text in the calibration file");
  add_common_flags(app, c.common, {.verbosity = true});
  if (auto rc = parse_llama(app, argc, argv, 1, "llama-imatrix", &c.common)) return *rc;
  c.common.apply(c.log);
  o.out = &c.log;
  co.n_threads = c.common.threads(co.n_threads);
  co.f16_keys = c.common.f16_keys();
  co.f16_values = c.common.f16_values();
  co.ggml_cpu = c.common.ggml_cpu();
  co.exact_products = c.common.exact_products();
  o.chunk_size_given = app.count("-c") > 0;
  o.in_files = split_lists(in_files);
  if (ppl) c.no_ppl = false;

  if (show_stats && report.empty()) return show_statistics(o, json);
  if (!report.empty() && c.text_path.empty()) {
    if (show_stats) show_statistics(o, json);
    return write_report(o, report);
  }
  if (c.text_path.empty()) {  // combine only (or convert)
    if (o.in_files.empty()) throw_error("nothing to do: give -f TEXT (with -m MODEL) to collect, or --in-file FILE");
    info(o, "No prompt provided; combining precomputed matrices only.");
    write_output(combine(o), o, output_format(o, false));
    return 0;
  }
  if (o.model_path.empty()) throw_error("collecting needs a model: give -m MODEL");
  c.model_path = o.model_path;
  c.verbosity = o.verbosity;
  co.output = o.output;
  co.format = output_format(o, false);
  co.n_ctx = o.chunk_size;
  co.output_frequency = output_frequency;
  co.dataset = c.text_path;
  if (!o.in_files.empty()) {
    // The inputs keep their own chunk size: collect() refuses one that is not -c.
    FileOptions inputs = o;
    inputs.chunk_size_given = false;
    c.start = combine(inputs);
    for (const auto& f : o.in_files) co.start_name += (co.start_name.empty() ? "" : ",") + f;
    flush_log(inputs);
  }
  const int rc = run_collection(c);
  if (rc != 0 || report.empty()) return rc;
  o.in_files = {co.output};
  return write_report(o, report);
}

}  // namespace imq::cli
