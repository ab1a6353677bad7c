// The imatrix readers on a file already opened or bytes already in memory. read_gguf,
// read_dat and read_cimatrix open the file and call these; the fuzz harnesses (fuzz/) call
// them directly. `name` stands for the file in messages, exactly as the path would.
#pragma once
#include <cstdint>
#include <span>
#include <string>

#include "imq/gguf.h"
#include "imq/imatrix.h"

namespace imq::imatrix {

Imatrix parse_gguf(const gguf::File& f, const ReadOptions& opt);
Imatrix parse_dat(std::span<const uint8_t> bytes, const std::string& name, const ReadOptions& opt);
// `model`: the GGUF that opt.model_path names, opened by the caller, or null (then
// opt.n_expert gives the number of experts).
Imatrix parse_cimatrix(std::span<const uint8_t> bytes, const std::string& name, const ReadOptions& opt,
                       const gguf::File* model);

}  // namespace imq::imatrix
