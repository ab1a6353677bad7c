// Reading a text file (calibration or evaluation text) as llama.cpp's tools read it.
#pragma once
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "imq/error.h"

namespace imq::cli {

// The whole file; one trailing newline is dropped, as llama.cpp does. `what` names the file
// in the error ("the calibration text"). An empty text is an error here, where the file is
// known, rather than a token count too small for any context later.
inline std::string read_text(const std::string& path, const char* what) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw_error("{}: {} is a directory (expected a text file)", path, what);
  std::ifstream f(path, std::ios::binary);
  if (!f) throw_error("{}: cannot open {}", path, what);
  std::stringstream ss;
  ss << f.rdbuf();
  if (f.bad()) throw_error("{}: cannot read {}", path, what);
  std::string s = ss.str();
  if (!s.empty() && s.back() == '\n') s.pop_back();
  if (s.empty()) throw_error("{}: {} is empty (expected text to tokenize)", path, what);
  return s;
}

}  // namespace imq::cli
