// SIGINT/SIGTERM for long commands: while a StopSignals object lives, the signals only set
// stop_flag() (the command finishes its step and stops cleanly, leaving no partial output);
// the old handlers come back when it is destroyed.
#pragma once
#include <csignal>
#include <stdexcept>

namespace imq::cli {

// The only process-wide state: what a signal handler may touch.
inline volatile std::sig_atomic_t g_stop = 0;
inline volatile std::sig_atomic_t g_signal = 0;

extern "C" inline void on_stop_signal(int sig) {
  g_signal = sig;
  g_stop = 1;
}

// Thrown by a command that stops on g_stop after cleaning up (no temporary file left): main
// prints what() as its one line and exits with 128 + the signal, as the shell expects.
class Stopped : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class StopSignals {
 public:
  StopSignals() {
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~StopSignals() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  struct sigaction old_int_ {}, old_term_ {};
};

}  // namespace imq::cli
