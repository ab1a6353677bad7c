// imq::Error: the one exception type of the library. Messages carry their context
// (file, byte offset, key or tensor name, expected vs found) so that `main` can print one line.
#pragma once
#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace imq {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// throw_error("{}: offset {}: expected ...", path, off): format and throw imq::Error.
template <typename... Args>
[[noreturn]] void throw_error(fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace imq
