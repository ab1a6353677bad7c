// imq imatrix's collection mode (-m MODEL -f TEXT): options as llama-imatrix spells them.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "imq/imatrix.h"

namespace imq::cli {

struct CollectOptions {
  std::string model_path, text_path;
  std::string output = "imatrix.gguf";
  imatrix::Format format = imatrix::Format::Gguf;
  int64_t n_ctx = 512;       // -c: tokens per chunk
  int64_t n_batch = 2048;    // -b
  int64_t n_ubatch = 512;    // -ub
  int n_threads = 0;         // -t (0: all cores)
  int64_t first_chunk = 0;   // --chunk
  int64_t n_chunks = -1;     // --chunks
  int64_t output_frequency = 10;
  int64_t save_frequency = 0;
  bool process_output = false, no_ppl = false, parse_special = false;
  int verbosity = 3;
  std::optional<imatrix::Imatrix> start;  // --in-file data to continue from
};

// Collects over the text and writes the imatrix; returns the exit code.
int run_collection(const CollectOptions& o);

}  // namespace imq::cli
