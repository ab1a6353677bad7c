// Fuzzes the tokenizer.model reader of HF model folders (SentencePiece's ModelProto: varints,
// wire types, nested piece messages, byte pieces).
#include <cstdint>
#include <span>

#include "hf/tokenizer.h"
#include "imq/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    (void)imq::hf::parse_sentencepiece(std::span<const uint8_t>(data, size), "tokenizer.model");
  } catch (const imq::Error&) {
  }
  return 0;
}
