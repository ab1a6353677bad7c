// Error-compensated quantization (`imq quantize --calibration-file TEXT`): GPTQ/OBQ into
// ggml's block types. The model is run layer by layer over calibration text with the layers
// before already quantized; each linear weight is quantized one input column at a time and the
// rounding error of each column is pushed onto the columns not yet quantized, through the
// inverse of H = sum x xᵀ of its inputs (docs/DESIGN.md, "Error-compensated quantization").
// The output is an ordinary GGUF (llama-quantize's mix, types, sizes and layout); only the
// block values differ.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "imq/quantize.h"

namespace imq::gptq {

struct Options {
  quantize::Options quant;      // mix, overrides, imatrix (block-fit importance), search
  std::string text_name;        // the calibration file's name, for messages
  int64_t n_ctx = 0;            // tokens per calibration chunk; 0: min(512, training context)
  int64_t n_chunks = -1;        // chunks to use (at most what the text holds); <= 0: as many
                                // as make 32768 tokens
  double damp = 0.01;           // H_ii += damp * mean(diag H)
  bool act_order = true;        // columns by importance within the block constraint
  bool correct = true;          // aim at the full-precision model's outputs, not at this layer's
                                // own outputs on the quantized inputs (a second model mapping)
  int variants = 16;            // candidate parameter sets per block (quant::GridOps), at most
  int64_t min_tokens = 0;       // fewer inputs than this (an expert's routed tokens; 0: the
                                // row length / 8): plain rounding
  int n_threads = 0;
  std::function<void(const std::string&)> log;               // one line per event
  std::function<void(int64_t done, int64_t total)> progress;  // steps of the layer loop
  std::function<bool()> cancelled;  // polled between steps; true stops with imq::Error
};

struct Summary {
  size_t compensated = 0;    // weights (experts count one each) quantized with error feedback
  size_t plain = 0;          // weights quantized block by block (no grid, a lookup, few tokens)
  int64_t calib_tokens = 0;  // tokens run through each layer
};

// Quantizes `model_path` to `out_path` (written atomically, like quantize::write_quantized).
// `text` is the calibration text. Returns the plan that was written.
quantize::Plan quantize_compensated(const std::string& model_path, std::string_view text,
                                    const std::string& out_path, const Options& options,
                                    Summary* summary = nullptr);

}  // namespace imq::gptq
