// Definition of run_imq; include from exactly one .cpp per test executable.
#pragma once
#include <sys/wait.h>

#include <array>
#include <cstdio>

#include "test_util.h"

namespace imq::test {

RunResult run_imq(const std::string& args) {
  TempDir d;
  std::string out = d.file("out"), err = d.file("err");
  std::string cmd = std::string(IMQ_BINARY) + " " + args + " >" + out + " 2>" + err + " </dev/null";
  int st = std::system(cmd.c_str());
  int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
  return {rc, read_all(out), read_all(err)};
}

}  // namespace imq::test
