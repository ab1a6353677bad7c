// nlohmann's parse errors as one printable line: the "[json.exception...]" prefix dropped and
// bytes outside printable ASCII (the file's own, quoted in "last read") shown as '?'. Parsing
// throws more than parse_error (a number past double's range is out_of_range 406), so callers
// catch nlohmann::json::exception, the base of them all.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace imq::hf {

inline std::string json_error(const nlohmann::json::exception& e) {
  std::string s = e.what();
  if (const size_t p = s.find("] "); s.rfind("[json.exception", 0) == 0 && p != std::string::npos) s.erase(0, p + 2);
  for (char& ch : s)
    if (static_cast<unsigned char>(ch) < 0x20 || static_cast<unsigned char>(ch) > 0x7e) ch = '?';
  return s;
}

}  // namespace imq::hf
