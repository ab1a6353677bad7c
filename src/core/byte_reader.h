// ByteReader: a bounds-checked little-endian cursor over a byte span. Every read that would
// run past the end throws imq::Error naming the file, the offset and what was being read.
#pragma once
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

#include "imq/error.h"

namespace imq {

class ByteReader {
 public:
  ByteReader(std::span<const uint8_t> data, std::string path) : data_(data), path_(std::move(path)) {}

  uint64_t offset() const { return pos_; }
  uint64_t size() const { return data_.size(); }
  uint64_t remaining() const { return data_.size() - pos_; }
  bool at_end() const { return pos_ == data_.size(); }
  const std::string& path() const { return path_; }

  void seek(uint64_t off) {
    if (off > data_.size()) fail(off, "seek past end of file");
    pos_ = off;
  }

  // Throws unless n more bytes are available; `what` names the field.
  void require(uint64_t n, std::string_view what) const {
    if (n > remaining())
      throw_error("{}: offset {}: truncated {}: need {} bytes, {} left", path_, pos_, what, n,
                  remaining());
  }

  template <typename T>
  T read(std::string_view what) {
    require(sizeof(T), what);
    T v;
    std::memcpy(&v, data_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::span<const uint8_t> bytes(uint64_t n, std::string_view what) {
    require(n, what);
    auto s = data_.subspan(pos_, n);
    pos_ += n;
    return s;
  }

  // A string of n bytes (no terminator).
  std::string string(uint64_t n, std::string_view what) {
    auto b = bytes(n, what);
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
  }

  [[noreturn]] void fail(uint64_t off, std::string_view msg) const {
    throw_error("{}: offset {}: {}", path_, off, msg);
  }

 private:
  std::span<const uint8_t> data_;
  std::string path_;
  uint64_t pos_ = 0;
};

}  // namespace imq
