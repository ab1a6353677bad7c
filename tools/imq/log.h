// Log: where a command's informational lines go and which are kept, set by llama.cpp's
// common flags (-lv/--verbosity N, --log-disable, --log-file FILE). Each command owns one;
// there is no process-wide logger. Results (perplexities, tables) go to stdout, not here.
//
// Levels follow llama.cpp's: 1 error, 2 warning, 3 info (the default threshold), 4 debug; a
// line is kept when its level <= the verbosity. --log-disable silences the console only;
// --log-file receives every kept line as well.
#pragma once
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace imq::cli {

class Log {
 public:
  static constexpr int kWarn = 2, kInfo = 3, kDebug = 4;

  Log() = default;
  // Throws imq::Error naming the file when it cannot be created.
  void set_file(const std::string& path);
  void set_verbosity(int v) { verbosity_ = v; }
  void set_console(bool on) { console_ = on; }
  int verbosity() const { return verbosity_; }
  bool enabled(int level) const { return level <= verbosity_ && (console_ || file_); }

  // One line (no trailing newline needed) at `level`.
  void line(int level, std::string_view text) const;
  // One line the caller has already decided to print (commands with their own verbosity
  // rules, such as imq imatrix's): to the console unless --log-disable, and to --log-file.
  void print(std::string_view text) const;
  template <typename... A>
  void info(fmt::format_string<A...> f, A&&... a) const {
    if (enabled(kInfo)) line(kInfo, fmt::format(f, std::forward<A>(a)...));
  }
  template <typename... A>
  void debug(fmt::format_string<A...> f, A&&... a) const {
    if (enabled(kDebug)) line(kDebug, fmt::format(f, std::forward<A>(a)...));
  }
  template <typename... A>
  void warn(fmt::format_string<A...> f, A&&... a) const {
    if (enabled(kWarn)) line(kWarn, fmt::format(f, std::forward<A>(a)...));
  }

 private:
  struct Close {
    void operator()(std::FILE* f) const { std::fclose(f); }
  };
  int verbosity_ = kInfo;
  bool console_ = true;
  std::unique_ptr<std::FILE, Close> file_;
};

}  // namespace imq::cli
