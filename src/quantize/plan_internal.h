// Pieces of the plan shared by plan.cpp, layout.cpp and quantizer.cpp.
#pragma once
#include <string>
#include <vector>

#include "imq/gguf.h"
#include "imq/quantize.h"
#include "quantize/importance.h"

namespace imq::quantize {

// Indices into model.tensors() in llama-quantize's output order: block number (non-block
// tensors first), then name byte order.
std::vector<size_t> output_order(const gguf::File& model);

// Throws when no imatrix entry names a tensor of the model (an imatrix of another model).
void check_imatrix_matches(const gguf::File& model, const ImportanceData& imp,
                           const std::string& imatrix_path);

// A writer holding the plan's metadata and one deferred tensor per planned tensor.
gguf::Writer make_writer(const Plan& plan);

// Fills plan.tensors[i].offset, plan.data_offset and plan.file_size from the writer layout.
void layout(Plan& plan);

}  // namespace imq::quantize
