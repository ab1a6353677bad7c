// Overflow-checked size arithmetic for lengths and counts read from files.
#pragma once
#include <cstdint>
#include <string_view>

#include "imq/error.h"

namespace imq {

inline uint64_t checked_add(uint64_t a, uint64_t b, std::string_view what) {
  uint64_t r;
  if (__builtin_add_overflow(a, b, &r)) throw_error("{}: size overflow ({} + {})", what, a, b);
  return r;
}

inline uint64_t checked_mul(uint64_t a, uint64_t b, std::string_view what) {
  uint64_t r;
  if (__builtin_mul_overflow(a, b, &r)) throw_error("{}: size overflow ({} * {})", what, a, b);
  return r;
}

}  // namespace imq
