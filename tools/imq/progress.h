// The one progress line of every long command, with ETA, on stderr and only when stderr is a
// terminal (so redirected output stays clean); redrawn at most five times a second and cleared
// before other output.
#pragma once
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

#include <fmt/format.h>

namespace imq::cli {

class Progress {
 public:
  // label: what runs ("perplexity:"); rate_unit: when set, the rate of units per second is
  // shown too ("chunks/s").
  explicit Progress(std::string label, std::string rate_unit = {})
      : label_(std::move(label)), rate_unit_(std::move(rate_unit)), tty_(::isatty(2) != 0) {}
  ~Progress() { clear(); }
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // `done` of `total` units; `counter` replaces the "done/total" text when given.
  void update(uint64_t done, uint64_t total, const std::string& counter = {}) {
    if (!tty_ || total == 0) return;
    const auto now = Clock::now();
    if (shown_ && done < total && now - last_ < std::chrono::milliseconds(200)) return;
    last_ = now;
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double frac = double(done) / double(total);
    const double eta = frac > 0 ? elapsed * (1 - frac) / frac : 0;
    std::string line = label_.empty() ? "" : label_ + " ";
    line += counter.empty() ? fmt::format("{}/{}", done, total) : counter;
    line += fmt::format(" {:5.1f}%", 100 * frac);
    if (!rate_unit_.empty() && elapsed > 0) line += fmt::format("  {:.2f} {}", double(done) / elapsed, rate_unit_);
    line += fmt::format("  elapsed {:.1f} s  ETA {:.1f} s", elapsed, eta);
    std::fprintf(stderr, "\r\033[K%s", line.c_str());
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
  std::string label_, rate_unit_;
  bool tty_, shown_ = false;
  Clock::time_point start_ = Clock::now(), last_{};
};

}  // namespace imq::cli
