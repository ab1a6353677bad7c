// The legacy .dat imatrix (spec b), little-endian, no magic:
//
//   i32 n_entries
//   n_entries x { i32 name_len | name | i32 ncall | i32 nval | f32 values[nval] }
//   optional trailer: i32 last_chunk | i32 dataset_len | dataset
//
// values = mean squared activation * ncall. In memory (GGUF units) an entry becomes
// sums = values * chunk_size and one count = ncall * chunk_size, as llama-imatrix loads it.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/atomic_file.h"
#include "core/byte_reader.h"
#include "core/mapped_file.h"
#include "imq/error.h"
#include "imq/imatrix.h"
#include "imatrix/readers.h"

namespace imq::imatrix {

namespace {

void put_i32(std::vector<uint8_t>& out, int64_t v, std::string_view what, const std::string& path) {
  if (v < INT32_MIN || v > INT32_MAX) throw_error("{}: {} {} does not fit the .dat format's int32", path, what, v);
  const int32_t x = int32_t(v);
  const auto* p = reinterpret_cast<const uint8_t*>(&x);
  out.insert(out.end(), p, p + sizeof(x));
}

void put_bytes(std::vector<uint8_t>& out, const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  out.insert(out.end(), p, p + n);
}

}  // namespace

Imatrix read_dat(const std::string& path, const ReadOptions& opt) {
  if (opt.chunk_size == 0) throw_error("{}: reading a .dat imatrix needs a chunk size > 0", path);
  MappedFile file(path);
  return parse_dat(file.bytes(), path, opt);
}

Imatrix parse_dat(std::span<const uint8_t> bytes, const std::string& path, const ReadOptions& opt) {
  if (opt.chunk_size == 0) throw_error("{}: reading a .dat imatrix needs a chunk size > 0", path);
  ByteReader r(bytes, path);
  if (r.size() == 0) throw_error("{}: empty file (expected a GGUF or legacy .dat imatrix)", path);
  const int32_t n_entries = r.read<int32_t>("entry count");
  if (n_entries <= 0) r.fail(0, fmt::format("entry count {} (expected > 0)", n_entries));
  // Each entry takes at least 16 bytes: bound the count before reserving anything.
  if (uint64_t(n_entries) > r.remaining() / 16)
    r.fail(0, fmt::format("entry count {} cannot fit in the {} bytes that follow", n_entries, r.remaining()));

  Imatrix m;
  m.chunk_size = opt.chunk_size;
  int32_t max_ncall = 0;
  for (int32_t i = 0; i < n_entries; ++i) {
    const uint64_t at = r.offset();
    const int32_t name_len = r.read<int32_t>("name length");
    if (name_len <= 0 || uint64_t(name_len) > r.remaining())
      r.fail(at, fmt::format("entry {}: name length {} (expected 1..{})", i, name_len, r.remaining()));
    std::string name = r.string(uint64_t(name_len), "name");
    const uint64_t ncall_at = r.offset();
    const int32_t ncall = r.read<int32_t>("ncall");
    if (ncall <= 0) r.fail(ncall_at, fmt::format("entry {}: ncall {} (expected > 0)", name, ncall));
    const uint64_t nval_at = r.offset();
    const int32_t nval = r.read<int32_t>("value count");
    if (nval <= 0 || uint64_t(nval) > r.remaining() / sizeof(float))
      r.fail(nval_at, fmt::format("entry {}: value count {} (expected 1..{})", name, nval,
                                  r.remaining() / sizeof(float)));
    auto bytes = r.bytes(uint64_t(nval) * sizeof(float), "values");
    Entry e;
    e.sums.resize(size_t(nval));
    std::memcpy(e.sums.data(), bytes.data(), bytes.size());
    const float scale = float(opt.chunk_size);
    for (float& v : e.sums) v *= scale;
    e.counts = {float(int64_t(ncall) * int64_t(opt.chunk_size))};
    max_ncall = std::max(max_ncall, ncall);
    if (!m.entries.emplace(std::move(name), std::move(e)).second)
      r.fail(at, fmt::format("entry {}: duplicate name", i));
  }
  m.chunk_count = uint32_t(max_ncall);
  if (!r.at_end()) {  // trailer: last chunk, then the dataset name
    const int32_t last_chunk = r.read<int32_t>("trailer chunk count");
    if (last_chunk < 0) r.fail(r.offset() - 4, fmt::format("trailer chunk count {} is negative", last_chunk));
    m.chunk_count = uint32_t(last_chunk);
    if (!r.at_end()) {
      const uint64_t at = r.offset();
      const int32_t len = r.read<int32_t>("dataset name length");
      if (len < 0 || uint64_t(len) > r.remaining())
        r.fail(at, fmt::format("dataset name length {} (expected 0..{})", len, r.remaining()));
      m.datasets.push_back(r.string(uint64_t(len), "dataset name"));
    }
    if (!r.at_end()) r.fail(r.offset(), fmt::format("{} unexpected bytes after the trailer", r.remaining()));
  }
  validate(m, path, opt.allow_non_finite);
  return m;
}

std::vector<std::string> write_dat(const Imatrix& m, const std::string& path, uint32_t chunk_size) {
  if (chunk_size == 0) throw_error("{}: writing a .dat imatrix needs a chunk size > 0", path);
  validate(m, path, false);
  std::vector<std::string> skipped;
  std::vector<uint8_t> body;
  int64_t n_written = 0;
  std::vector<float> tmp;
  for (const auto& [name, e] : m.entries) {
    const float max_count = *std::max_element(e.counts.begin(), e.counts.end());
    const int64_t max_n = std::llround(max_count);
    if (max_n <= 0) {
      skipped.push_back(name);
      continue;
    }
    // Ceiling division, so that an entry with data never gets ncall 0.
    const int64_t ncall = (max_n + int64_t(chunk_size) - 1) / int64_t(chunk_size);
    const size_t per_slot = e.sums.size() / e.counts.size();
    tmp.resize(e.sums.size());
    for (size_t i = 0; i < e.sums.size(); ++i) {
      const float c = float(std::llround(e.counts[i / per_slot]));
      tmp[i] = c > 0 ? e.sums[i] / c * float(ncall) : float(ncall);
    }
    put_i32(body, int64_t(name.size()), "name length", path);
    put_bytes(body, name.data(), name.size());
    put_i32(body, ncall, "ncall", path);
    put_i32(body, int64_t(tmp.size()), "value count", path);
    put_bytes(body, tmp.data(), tmp.size() * sizeof(float));
    ++n_written;
  }
  if (n_written == 0) throw_error("{}: no entry has any data; nothing to write", path);
  std::vector<uint8_t> head;
  put_i32(head, n_written, "entry count", path);
  put_i32(body, int64_t(m.chunk_count), "chunk count", path);
  const std::string dataset = m.datasets.empty() ? std::string() : m.datasets.back();
  put_i32(body, int64_t(dataset.size()), "dataset name length", path);
  put_bytes(body, dataset.data(), dataset.size());

  AtomicFile out(path);
  out.write(head);
  out.write(body);
  out.commit();
  return skipped;
}

}  // namespace imq::imatrix
