// AtomicFile: write a file so that readers only ever see the old complete file or the new
// complete one. Data goes to "<path>.tmp.<pid>" beside the target; commit() flushes, fsyncs and
// renames it into place. Destroying an uncommitted AtomicFile removes the temporary file, so
// an error or an exception leaves no partial output behind.
#pragma once
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>

namespace imq {

class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t n);
  void write(std::span<const uint8_t> b) { write(b.data(), b.size()); }
  void write_zeros(size_t n);
  uint64_t tell() const { return written_; }
  // Overwrite bytes already written at `offset` (e.g. a header written last).
  void pwrite(uint64_t offset, const void* data, size_t n);
  void commit();

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return tmp_; }

 private:
  std::string path_, tmp_;
  int fd_ = -1;
  uint64_t written_ = 0;
  bool committed_ = false;
};

}  // namespace imq
