// Fuzzes the safetensors reader (header length, JSON header, dtypes, shapes, byte ranges);
// an accepted file has every tensor's data touched.
#include <cstdint>
#include <vector>

#include "core/mapped_file.h"
#include "hf/safetensors.h"
#include "imq/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto f = imq::hf::SafetensorsFile::parse(
        imq::MappedFile("fuzz.safetensors", std::vector<uint8_t>(data, data + size)));
    volatile uint8_t sink = 0;
    for (const auto& t : f.tensors()) {
      const auto d = f.data(*f.find(t.name));
      if (!d.empty()) sink = sink ^ d.front() ^ d.back();
      (void)t.n_elements();
    }
  } catch (const imq::Error&) {
  }
  return 0;
}
