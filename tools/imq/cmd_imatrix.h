// imq imatrix's collection mode (-m MODEL -f TEXT), called by cmd_imatrix once the options
// are parsed.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "imq/imatrix.h"
#include "imq/imatrix_collect.h"

#include "common_flags.h"
#include "log.h"

namespace imq::cli {

struct CollectCommand {
  std::string model_path, text_path;
  imatrix::CollectOptions opt;  // -c -ub -t --chunk --chunks -o --output-format frequencies
  int64_t n_batch = 2048;       // -b: caps the micro-batch like llama.cpp's logical batch
  bool no_ppl = false, parse_special = false;
  int verbosity = 3;
  std::optional<imatrix::Imatrix> start;  // --in-file data to continue from
  CommonFlags common;  // llama.cpp's common flags (--no-mmap, -ctk, -ngl ...)
  Log log;             // where the info lines go (--log-disable, --log-file)
};

// Collects over the text and writes the imatrix; returns the exit code.
int run_collection(CollectCommand& c);

}  // namespace imq::cli
