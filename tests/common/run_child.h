// Runs the imq binary as a child process (fork + exec, no shell) under a file-size limit and a
// timeout, with a hook that may signal it while it runs; captures stdout and stderr.
// Define IMQ_BINARY (the build does for every test executable) before including.
#pragma once
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "test_util.h"

namespace imq::test {

struct ChildOptions {
  uint64_t fsize_limit = 0;  // RLIMIT_FSIZE in bytes; 0: unlimited
  int timeout_s = 300;       // SIGKILL after this long (rc 137): a hang fails, never blocks
  // Called about every 5 ms while the child runs; may send it a signal.
  std::function<void(pid_t)> poll;
};

// "a b c" -> {"a", "b", "c"} (the tests' paths have no spaces).
inline std::vector<std::string> split_args(const std::string& s) {
  std::vector<std::string> v;
  std::istringstream in(s);
  for (std::string a; in >> a;) v.push_back(a);
  return v;
}

// Appends what is available on the non-blocking fd to `s`.
inline void drain(int fd, std::string& s) {
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof(buf))) > 0;) s.append(buf, size_t(n));
}

// rc: the exit status, or 128 + the signal that ended it. stdout and stderr come through pipes,
// which the file-size limit does not touch.
inline RunResult run_imq_child(const std::vector<std::string>& args, const ChildOptions& o = {}) {
  std::vector<std::string> argv_s = {IMQ_BINARY};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  int po[2], pe[2];
  if (pipe(po) != 0 || pipe(pe) != 0) return {-1, "", "pipe failed"};
  const pid_t pid = fork();
  if (pid == 0) {  // only async-signal-safe calls until exec
    const int fi = ::open("/dev/null", O_RDONLY);
    if (fi < 0) _exit(126);
    dup2(fi, 0), dup2(po[1], 1), dup2(pe[1], 2);
    ::close(po[0]), ::close(pe[0]), ::close(po[1]), ::close(pe[1]);
    if (o.fsize_limit) {
      const rlimit r{rlim_t(o.fsize_limit), rlim_t(o.fsize_limit)};
      if (setrlimit(RLIMIT_FSIZE, &r) != 0) _exit(126);
    }
    signal(SIGXFSZ, SIG_DFL);  // imq must protect itself from SIGXFSZ
    execv(argv[0], argv.data());
    _exit(127);
  }
  ::close(po[1]), ::close(pe[1]);
  if (pid < 0) return {-1, "", "fork failed"};
  fcntl(po[0], F_SETFL, O_NONBLOCK);
  fcntl(pe[0], F_SETFL, O_NONBLOCK);
  RunResult r{-1, "", ""};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(o.timeout_s);
  int st = 0;
  for (;;) {
    drain(po[0], r.out), drain(pe[0], r.err);
    if (waitpid(pid, &st, WNOHANG) == pid) break;
    if (std::chrono::steady_clock::now() > deadline) kill(pid, SIGKILL);
    if (o.poll) o.poll(pid);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  fcntl(po[0], F_SETFL, 0), fcntl(pe[0], F_SETFL, 0);
  drain(po[0], r.out), drain(pe[0], r.err);
  ::close(po[0]), ::close(pe[0]);
  r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
  return r;
}

}  // namespace imq::test
