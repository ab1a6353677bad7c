// Helpers shared by the tests: locating ../shared (IMQ_SHARED, default <source>/../shared),
// skipping or failing (IMQ_REQUIRE_SHARED=1, set by .ci/run) when it is absent, temp dirs,
// and running the imq binary.
#pragma once
#include <gtest/gtest.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace imq::test {

inline std::filesystem::path shared_root() {
  if (const char* s = std::getenv("IMQ_SHARED"); s && *s) return s;
  return std::filesystem::path(IMQ_SOURCE_DIR) / ".." / "shared";
}

inline bool shared_required() {
  const char* s = std::getenv("IMQ_REQUIRE_SHARED");
  return s && *s && std::string(s) != "0";
}

// `s` as a gtest test name: every character other than a letter or digit becomes '_'.
inline std::string gtest_name(std::string s) {
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return s;
}

// The whole file as bytes ("" when it cannot be read).
inline std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Path of a file under ../shared, or "" when missing (the caller then uses IMQ_NEED_SHARED).
inline std::string shared_file(const std::string& rel) {
  auto p = shared_root() / rel;
  return std::filesystem::exists(p) ? p.string() : std::string();
}

// A fresh empty directory under the system temp dir, removed at scope exit.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "imq-test-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

struct RunResult {
  int rc;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs `imq <args>` through the shell (args are appended verbatim).
RunResult run_imq(const std::string& args);

}  // namespace imq::test

// Use at the top of a test that needs ../shared/<rel>: skips with a message, or fails when
// IMQ_REQUIRE_SHARED is set. Declares `std::string var` holding the path.
#define IMQ_NEED_SHARED(var, rel)                                                        \
  const std::string var = ::imq::test::shared_file(rel);                                 \
  if (var.empty()) {                                                                     \
    if (::imq::test::shared_required()) FAIL() << "missing shared file: " << (rel);      \
    GTEST_SKIP() << "shared data not found: " << (rel) << " (set IMQ_SHARED)";           \
  }
