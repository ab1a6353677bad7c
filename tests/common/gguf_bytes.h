// Hand-made GGUF files for the bad-input tests: a little-endian byte builder and one small
// valid file that the tests patch (tests/gguf, tests/corpus).
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace imq::test {

struct Bytes {
  std::vector<uint8_t> b;
  Bytes() { b.reserve(256); }  // also silences a GCC 12 false -Wstringop-overflow on empty inserts
  template <typename T>
  Bytes& pod(T v) {
    uint8_t x[sizeof(T)];
    std::memcpy(x, &v, sizeof(T));
    b.insert(b.end(), x, x + sizeof(T));
    return *this;
  }
  Bytes& str(const std::string& s) {
    pod<uint64_t>(s.size());
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  Bytes& raw(const char* s, size_t n) {
    b.insert(b.end(), s, s + n);
    return *this;
  }
  Bytes& pad(size_t a) {
    while (b.size() % a) b.push_back(0);
    return *this;
  }
  // Overwrites sizeof(T) bytes at `offset` with v.
  template <typename T>
  Bytes& patch(size_t offset, T v) {
    std::memcpy(b.data() + offset, &v, sizeof(T));
    return *this;
  }
  Bytes cut(size_t n) const {
    Bytes t;
    t.b.assign(b.begin(), b.begin() + long(n));
    return t;
  }
  std::string str_bytes() const { return std::string(b.begin(), b.end()); }
};

// GGUF v3 header with n_tensors tensors and n_kv metadata pairs still to come.
inline Bytes gguf_header(int64_t n_tensors, int64_t n_kv) {
  Bytes f;
  f.raw("GGUF", 4).pod<uint32_t>(3).pod<int64_t>(n_tensors).pod<int64_t>(n_kv);
  return f;
}

// A valid file: 1 KV (general.alignment = 32), 2 F32 tensors "a" [8] and "b" [3].
//   offset 0 header (24) | 24 KV (33; the value at 24+8+17+4 = 53) | 57 tensor a (33)
//   | 90 tensor b (33; its offset field at 90+9+4+8+4 = 115) | 128 data
inline Bytes valid_gguf() {
  Bytes f = gguf_header(2, 1);
  f.str("general.alignment").pod<int32_t>(4).pod<uint32_t>(32);
  f.str("a").pod<uint32_t>(1).pod<int64_t>(8).pod<uint32_t>(0).pod<uint64_t>(0);
  f.str("b").pod<uint32_t>(1).pod<int64_t>(3).pod<uint32_t>(0).pod<uint64_t>(32);
  f.pad(32);
  for (int i = 0; i < 8; ++i) f.pod<float>(float(i));
  for (int i = 0; i < 3; ++i) f.pod<float>(float(i));
  f.pad(32);
  return f;
}
constexpr size_t kValidGgufAlignmentValue = 53;
constexpr size_t kValidGgufOffsetOfB = 115;

}  // namespace imq::test
