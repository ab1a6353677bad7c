// A one-line progress indicator with ETA on stderr, shown only when stderr is a terminal
// (so redirected output stays clean). Cleared before other output.
#pragma once
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace imq::cli {

class Progress {
 public:
  explicit Progress(std::string label) : label_(std::move(label)), tty_(::isatty(2) != 0) {}
  ~Progress() { clear(); }

  void update(long done, long total) {
    if (!tty_ || total <= 0) return;
    const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
    const double frac = double(done) / double(total);
    const double eta = frac > 0 ? elapsed * (1 - frac) / frac : 0;
    std::fprintf(stderr, "\r\033[K%s %ld/%ld %5.1f%%  elapsed %.1f s  ETA %.1f s", label_.c_str(),
                 done, total, 100 * frac, elapsed, eta);
    std::fflush(stderr);
    shown_ = true;
  }
  void clear() {
    if (!shown_) return;
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
    shown_ = false;
  }

 private:
  using Clock = std::chrono::steady_clock;
  std::string label_;
  bool tty_, shown_ = false;
  Clock::time_point start_ = Clock::now();
};

}  // namespace imq::cli
