// MappedFile: a read-only view of a whole file (move-only), memory-mapped by default or read
// into memory (FileAccess::kRead, llama.cpp's --no-mmap). Empty files give an empty span.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace imq {

enum class FileAccess : uint8_t {
  kMap,   // mmap: pages are read on first touch and shared with the page cache
  kRead,  // read(2) into a heap buffer at open: no mapping, every byte read up front
};

class MappedFile {
 public:
  explicit MappedFile(const std::string& path, FileAccess access = FileAccess::kMap);
  // Bytes already in memory (e.g. a file made by a converter), named `name` in messages.
  MappedFile(std::string name, std::vector<uint8_t> bytes);
  ~MappedFile();
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  // Lets the kernel take back the whole pages inside `range` (a part of bytes()) from this
  // process: they no longer count in its RSS and are read from the file again if touched.
  // Nothing for a file read into memory (its bytes are the only copy).
  void drop_pages(std::span<const uint8_t> range) const;
  const std::string& path() const { return path_; }
  bool mapped() const { return mapped_; }

 private:
  void release();

  std::string path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  bool mapped_ = false;        // data_ is an mmap of size_ bytes
  std::vector<uint8_t> read_;  // FileAccess::kRead: the bytes
};

// Locks `bytes` into RAM (mlock, llama.cpp's --mlock). Returns "" on success, else why not
// (e.g. RLIMIT_MEMLOCK too low): the caller decides whether that is worth a warning.
std::string lock_in_memory(std::span<const uint8_t> bytes);

}  // namespace imq
