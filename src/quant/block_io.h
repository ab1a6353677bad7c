// Reading and writing packed blocks through memcpy, so that codecs never depend on the
// alignment of the caller's buffer (a GGUF tensor may start at any 32-byte boundary, a
// user buffer anywhere). Blocks are little-endian on disk; so is every supported host.
#pragma once
#include <bit>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace imq::quant {

static_assert(std::endian::native == std::endian::little, "block layouts assume little-endian");

template <typename Block>
inline Block load_block(const void* base, int64_t index) {
  static_assert(std::is_trivially_copyable_v<Block>);
  Block b;
  std::memcpy(&b, static_cast<const unsigned char*>(base) + index * int64_t(sizeof(Block)), sizeof b);
  return b;
}

template <typename Block>
inline void store_block(void* base, int64_t index, const Block& b) {
  std::memcpy(static_cast<unsigned char*>(base) + index * int64_t(sizeof(Block)), &b, sizeof b);
}

}  // namespace imq::quant
