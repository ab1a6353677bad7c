// Fuzzes the config.json reader of HF model folders (JSON, architecture class, hyperparameter
// types and ranges).
#include <cstdint>
#include <string>

#include "hf/config.h"
#include "imq/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    (void)imq::hf::parse_config(std::string(reinterpret_cast<const char*>(data), size), "config.json");
  } catch (const imq::Error&) {
  }
  return 0;
}
