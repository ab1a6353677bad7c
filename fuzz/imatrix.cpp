// Fuzzes the imatrix readers. An input that starts with the GGUF magic goes to the GGUF
// imatrix reader (through the GGUF reader); any other input is read both as a legacy .dat and
// as a mistral.rs .cimatrix (with 8 experts, so that expert entries are accepted). Whatever
// loads is fed to the statistics, as `imq imatrix --show-statistics` would.
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "imatrix/readers.h"
#include "imq/error.h"
#include "imq/gguf.h"
#include "imq/imatrix.h"

namespace {

void use(const imq::imatrix::Imatrix& m) {
  const auto stats = imq::imatrix::compute_statistics(m);
  (void)imq::imatrix::format_statistics(stats, "fuzz");
  (void)imq::imatrix::coverage_issues(m);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> bytes(data, size);
  imq::imatrix::ReadOptions opt;
  // The last byte decides whether NaN/Inf sums are loaded (statistics) or rejected.
  opt.allow_non_finite = size > 0 && (data[size - 1] & 1);
  if (size >= 4 && std::memcmp(data, "GGUF", 4) == 0) {
    try {
      const auto f = imq::gguf::File::from_memory("fuzz.imatrix.gguf", std::vector<uint8_t>(data, data + size));
      use(imq::imatrix::parse_gguf(f, opt));
    } catch (const imq::Error&) {
    }
    return 0;
  }
  try {
    use(imq::imatrix::parse_dat(bytes, "fuzz.dat", opt));
  } catch (const imq::Error&) {
  }
  opt.n_expert = 8;
  try {
    use(imq::imatrix::parse_cimatrix(bytes, "fuzz.cimatrix", opt, nullptr));
  } catch (const imq::Error&) {
  }
  return 0;
}
