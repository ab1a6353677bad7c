// In-situ quantization, in mistral.rs's shape (its ISQ, with an importance matrix): load a model,
// collect the imatrix from a calibration text in memory, quantize the weights in memory, run —
// one call, no files unless asked (save_gguf / save_imatrix write what two commands,
// `imq imatrix` then `imq quantize`, would have written from the same inputs).
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "imq/eval.h"
#include "imq/imatrix.h"
#include "imq/model.h"
#include "imq/quantize.h"

namespace imq::insitu {

// The stages of Runner::build, for progress reports.
enum class Stage : uint8_t { Load, Calibrate, Quantize };
const char* stage_name(Stage s);  // "load", "calibrate", "quantize"

struct Options {
  // mistral.rs's ISQ names put every weight matrix in one type: Q2K Q3K Q4K Q5K Q6K Q4_0 Q4_1
  // Q5_0 Q5_1 Q8_0 (llama-quantize --pure); llama.cpp's mix names (Q4_K_M, Q3_K_S, IQ4_XS ...)
  // give its mixes.
  std::string isq = "Q4K";
  std::string calibration_file;     // "": no imatrix (llama-quantize without --imatrix)
  int64_t calibration_ctx = 512;    // tokens per calibration chunk (imq imatrix -c)
  int64_t calibration_chunks = -1;  // -1: every whole chunk of the text (imq imatrix --chunks)
  quantize::Search search = quantize::Search::kReference;
  int n_threads = 0;                // <= 0: all cores
  // One line per stage: what is loaded, the calibration's chunks and perplexity, the tensors
  // quantized.
  std::function<void(const std::string&)> log;
  // Each stage's advance, `done` of `total` units (the model; calibration chunks; tensors), for
  // a progress bar; called with done == 0 when a stage starts and done == total when it ends.
  std::function<void(Stage stage, uint64_t done, uint64_t total)> progress;
};

// The quantize options an ISQ name stands for (throws naming the valid names).
quantize::Options isq_options(const std::string& isq);

class Runner {
 public:
  // Loads `model_path` (GGUF), calibrates, quantizes in memory.
  static std::unique_ptr<Runner> build(const std::string& model_path, const Options& options);
  ~Runner();

  // Continues `prompt` by up to max_tokens tokens (stops at end of generation); returns the
  // generated text.
  std::string generate(const std::string& prompt, int64_t max_tokens,
                       const eval::SamplingOptions& sampling = {});
  // The quantized model as a GGUF file, byte for byte what `imq quantize` writes from the same
  // model and imatrix (its quantize.imatrix.file names the last save_imatrix path, if any).
  void save_gguf(const std::string& path);
  void save_imatrix(const std::string& path, imatrix::Format format = imatrix::Format::Gguf);

  const imatrix::Imatrix* imatrix() const;  // null without a calibration file
  const quantize::Plan& plan() const;
  model::Model& model();

 private:
  Runner();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace imq::insitu
