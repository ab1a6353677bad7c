// Definition of run_imq; include from exactly one .cpp per test executable.
#pragma once
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "test_util.h"

namespace imq::test {

inline std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

RunResult run_imq(const std::string& args) {
  TempDir d;
  std::string out = d.file("out"), err = d.file("err");
  std::string cmd = std::string(IMQ_BINARY) + " " + args + " >" + out + " 2>" + err + " </dev/null";
  int st = std::system(cmd.c_str());
  int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
  return {rc, slurp(out), slurp(err)};
}

}  // namespace imq::test
