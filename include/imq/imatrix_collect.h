// Collecting an importance matrix over a calibration text (spec c): the model runs chunk by
// chunk with an observer on every weight matmul, as llama-imatrix does, and the perplexity of
// the second half of each chunk comes for free.
//
// What is collected: every blk.* weight (and output.weight with process_output); dense
// micro-batches of fewer than 16 rows are ignored (llama.cpp's rule), expert matmuls never;
// per expert the count is the number of rows routed to it.
//
// Determinism: each chunk is accumulated in double, row by row in token order, then added to
// the float totals once per chunk. The result does not depend on the thread count or on the
// micro-batch size (beyond the 16-row rule), and a run resumed from a save made after chunk k
// continues bit for bit as if it had not stopped.
#pragma once
#include <csignal>
#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "imq/eval.h"
#include "imq/imatrix.h"
#include "imq/model.h"

namespace imq::imatrix {

struct CollectOptions {
  int64_t n_ctx = 512;        // tokens per chunk (-c), written as imatrix.chunk_size
  int64_t n_ubatch = 512;     // most rows per forward pass
  int n_threads = 0;          // <= 0: all cores
  int64_t first_chunk = 0;    // --chunk: chunks of the text skipped
  int64_t n_chunks = -1;      // --chunks: most chunks to process (-1: all)
  bool process_output = false;
  std::string output;         // file saved periodically and at the end ("" : never saved)
  Format format = Format::Gguf;
  int64_t output_frequency = 10;  // save `output` whenever the chunk count is a multiple (0: never)
  int64_t save_frequency = 0;     // also save `output`.at_<chunk count> (0: never)
  std::string dataset;        // the calibration file's name, appended to imatrix.datasets
  std::string start_name;     // the imatrix continued from (its files), named by errors about it
  model::GgmlCpu ggml_cpu = model::GgmlCpu::Avx2;  // --ggml-cpu (model::SessionOptions)
  bool exact_products = true;  // --products (model::SessionOptions::exact_products)
  bool f16_keys = true;       // -ctk / -ctv: the KV cache's types (model::SessionOptions)
  bool f16_values = true;
};

struct CollectProgress {
  int64_t done = 0;       // chunks done in this run
  int64_t n_chunks = 0;   // chunks this run will do
  uint32_t chunk_count = 0;  // chunks in the imatrix, including those it started from
  eval::NllTotals nll;    // over this run's chunks
};

struct CollectHooks {
  std::function<void(const CollectProgress&)> on_chunk;
  std::function<void(const std::string& path, uint32_t chunk_count)> on_save;
  // A periodic save failed (full disk, I/O error; `error` is its one-line message). Collection
  // goes on with the data in memory and the next save writes all of it; the final save's
  // failure throws instead.
  std::function<void(const std::string& path, uint32_t chunk_count, const std::string& error)> on_save_failed;
  // Set (e.g. by a signal handler) to stop: the chunk in flight is dropped, the completed ones
  // are saved and collect() returns with stopped = true.
  const volatile std::sig_atomic_t* stop = nullptr;
};

struct CollectResult {
  Imatrix data;           // also saved to options.output
  eval::NllTotals nll;
  int64_t chunks_done = 0;
  bool stopped = false;
};

// Evaluates min(n_chunks, whole chunks after first_chunk) chunks of `tokens` (tokenized with
// BOS as the vocabulary says; `bos` >= 0 replaces each chunk's first token), adding to `start`
// (its chunk size must be n_ctx or unknown). Throws imq::Error for too short a text, a start
// imatrix that does not fit the model, or NaN/Inf activations (naming tensor and chunk, after
// saving the chunks completed before it).
CollectResult collect(const model::Model& model, std::span<const int32_t> tokens, int32_t bos,
                      Imatrix start, const CollectOptions& options, const CollectHooks& hooks = {});

// One line summarizing what was collected: entries, chunks, tokens, and experts or tensors
// that saw no tokens.
std::string coverage_summary(const Imatrix& m);

}  // namespace imq::imatrix
