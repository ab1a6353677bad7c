#include "core/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "imq/error.h"

namespace imq {
namespace {

// Closes the descriptor on every path out of the constructor.
struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Reads exactly out.size() bytes from the start of the file, retrying short reads.
void read_whole(int fd, const std::string& path, std::span<uint8_t> out) {
  uint64_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::pread(fd, out.data() + done, out.size() - done, off_t(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_error("{}: read error at offset {}: {}", path, done, std::strerror(errno));
    if (n == 0) throw_error("{}: file shrank while reading: {} of {} bytes", path, done, out.size());
    done += uint64_t(n);
  }
}

}  // namespace

MappedFile::MappedFile(const std::string& path, FileAccess access) : path_(path) {
  Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0) throw_error("{}: cannot open: {}", path, std::strerror(errno));
  struct stat st{};
  if (::fstat(f.fd, &st) != 0) throw_error("{}: cannot stat: {}", path, std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw_error("{}: not a regular file", path);
  size_ = static_cast<uint64_t>(st.st_size);
  if (size_ == 0) return;
  if (access == FileAccess::kRead) {
    read_.resize(size_);
    read_whole(f.fd, path, read_);
    data_ = read_.data();
    return;
  }
  void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, f.fd, 0);
  if (p == MAP_FAILED) throw_error("{}: cannot map {} bytes: {}", path, size_, std::strerror(errno));
  data_ = static_cast<const uint8_t*>(p);
  mapped_ = true;
}

MappedFile::MappedFile(std::string name, std::vector<uint8_t> bytes)
    : path_(std::move(name)), size_(bytes.size()), read_(std::move(bytes)) {
  data_ = read_.empty() ? nullptr : read_.data();
}

void MappedFile::release() {
  if (mapped_) ::munmap(const_cast<uint8_t*>(data_), size_);
  read_ = {};
  data_ = nullptr;
  size_ = 0;
  mapped_ = false;
}

MappedFile::~MappedFile() { release(); }

// A moved vector keeps its buffer, so data_ stays valid for read files too.
MappedFile::MappedFile(MappedFile&& o) noexcept
    : path_(std::move(o.path_)),
      data_(std::exchange(o.data_, nullptr)),
      size_(std::exchange(o.size_, 0)),
      mapped_(std::exchange(o.mapped_, false)),
      read_(std::move(o.read_)) {}

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
  if (this != &o) {
    release();
    path_ = std::move(o.path_);
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
    mapped_ = std::exchange(o.mapped_, false);
    read_ = std::move(o.read_);
  }
  return *this;
}

void MappedFile::drop_pages(std::span<const uint8_t> range) const {
  if (!mapped_ || range.empty()) return;
  const auto page = uintptr_t(::sysconf(_SC_PAGESIZE));
  const auto begin = (uintptr_t(range.data()) + page - 1) / page * page;
  const auto end = uintptr_t(range.data() + range.size()) / page * page;
  if (begin < uintptr_t(data_) || end > uintptr_t(data_ + size_) || begin >= end) return;
  // A private read-only mapping never written: dropped pages fault back in from the file.
  ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

std::string lock_in_memory(std::span<const uint8_t> bytes) {
  if (bytes.empty()) return "";
  if (::mlock(bytes.data(), bytes.size()) == 0) return "";
  const int e = errno;
  std::string why = fmt::format("cannot lock {} bytes in memory: {}", bytes.size(), std::strerror(e));
  if (e == ENOMEM || e == EPERM) why += " (raise the limit with 'ulimit -l')";
  return why;
}

}  // namespace imq
