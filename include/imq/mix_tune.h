// imq's measured mix (`imq quantize --tune-mix TEXT`): instead of llama-quantize's fixed rules,
// the type of each group of tensors is chosen by what quantizing that group alone costs on
// calibration text (mean KL divergence against the unquantized model, measured with the engine),
// minimising the sum over groups at no more bytes than the standard mix of the same TYPE. The
// result is a list of exact-name --tensor-type overrides, so llama-quantize can reproduce the
// file. A whole-mix check on the same text keeps the standard mix when the chosen one is not
// better there.
//
//   tune::MixTuneResult r = tune::tune_mix(model_path, options, calibration_text, tune_options);
//   options.tensor_types.insert(options.tensor_types.begin(), r.overrides.begin(), r.overrides.end());
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "imq/quantize.h"

namespace imq::tune {

enum class Granularity {
  kCategory,  // one type per tensor kind across layers (attn_v.weight, ffn_down.weight, ...)
  kTensor,    // one type per tensor (n_layer times the measurements)
};

struct MixTuneOptions {
  int64_t n_ctx = 0;      // tokens per calibration chunk; 0: min(512, the training context)
  int64_t n_chunks = 8;   // calibration chunks (scored as KL divergence: positions n_ctx/2 ..)
  int n_threads = 0;      // <= 0: all hardware threads
  std::string text_name = "the calibration text";  // in errors (the CLI passes the path)
  Granularity granularity = Granularity::kCategory;
  std::function<void(const std::string&)> log;  // one line per measurement step (optional)
};

struct Candidate {
  GgmlType type = GgmlType::F32;  // the ladder type (each tensor gets it or its shape fallback)
  uint64_t bytes = 0;     // of the group's tensors
  double kld = 0;         // mean KLD with only this group quantized
};

struct GroupResult {
  std::string name;                  // tensor kind ("attn_v.weight") or tensor name
  std::vector<std::string> tensors;
  std::vector<Candidate> candidates;
  uint64_t standard_bytes = 0;       // in the standard mix
  size_t chosen = 0;                 // index into candidates
};

struct MixTuneResult {
  // One exact-name override per tuned tensor (standard types included: a partial list would
  // shift llama-quantize's rule counters); empty when kept_standard.
  std::vector<quantize::TensorTypeOverride> overrides;
  std::vector<GroupResult> groups;
  uint64_t budget_bytes = 0;   // the tuned tensors in the standard mix
  uint64_t chosen_bytes = 0;
  double kld_standard = 0;     // whole mix, measured on the calibration chunks
  double kld_chosen = 0;
  bool kept_standard = false;  // the chosen mix was not better on the calibration text
};

// Tunes the mix of `options` (its TYPE must be a K-quant mix: Q2_K ... Q6_K) for the model at
// `model_path` on `text` (calibration text, tokenized with the model's vocabulary and chunked
// as perplexity does). Tensors forced by --tensor-type,
// --output-tensor-type or --token-embedding-type are left as given. Throws imq::Error.
MixTuneResult tune_mix(const std::string& model_path, const quantize::Options& options,
                       std::string_view text, const MixTuneOptions& tune);

// The overrides as a --tensor-type-file: one PATTERN=TYPE per line, nothing else (llama-quantize
// reads whitespace-separated entries and knows no comments); empty when kept_standard.
std::string tensor_type_file_text(const MixTuneResult& r);
// Writes that text to `path` atomically (temporary file, then rename).
void write_tensor_type_file(const std::string& path, const MixTuneResult& r);

}  // namespace imq::tune
