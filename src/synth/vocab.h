// Synthetic models (imq synth): vocabulary builder shared by the writer and its tests.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "imq/model.h"

namespace imq::model {

struct SynthVocab {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;  // llama.cpp token types: 1 normal, 2 unknown, 3 control, 6 byte
};

// An SPM-style vocabulary of exactly n_vocab tokens (n_vocab >= 260).
SynthVocab make_synth_vocab(int64_t n_vocab, uint64_t seed);

}  // namespace imq::model
