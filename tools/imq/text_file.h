// Reading a text file (calibration or evaluation text) as llama.cpp's tools read it.
#pragma once
#include <fstream>
#include <sstream>
#include <string>

#include "imq/error.h"

namespace imq::cli {

// The whole file; one trailing newline is dropped, as llama.cpp does. `what` names the file
// in the error ("the calibration text").
inline std::string read_text(const std::string& path, const char* what) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw_error("{}: cannot open {}", path, what);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string s = ss.str();
  if (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

}  // namespace imq::cli
