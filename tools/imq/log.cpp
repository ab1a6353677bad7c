#include "log.h"

#include <cerrno>
#include <cstring>

#include "imq/error.h"

namespace imq::cli {

void Log::set_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (!f) throw_error("--log-file {}: cannot create: {}", path, std::strerror(errno));
  file_.reset(f);
}

void Log::line(int level, std::string_view text) const {
  if (level <= verbosity_) print(text);
}

void Log::print(std::string_view text) const {
  const bool newline = text.empty() || text.back() != '\n';
  for (std::FILE* f : {console_ ? stderr : nullptr, file_.get()}) {
    if (!f) continue;
    std::fwrite(text.data(), 1, text.size(), f);
    if (newline) std::fputc('\n', f);
    std::fflush(f);
  }
}

}  // namespace imq::cli
