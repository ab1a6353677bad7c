#include "quantize/importance.h"

#include <cmath>
#include <cstring>
#include <fstream>

#include "core/byte_reader.h"
#include "core/checked.h"
#include "core/mapped_file.h"
#include "imq/error.h"
#include "imq/gguf.h"

namespace imq::quantize {

namespace {

bool starts_with_gguf_magic(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw_error("{}: cannot open imatrix file: {}", path, std::strerror(errno));
  char m[4] = {};
  f.read(m, 4);
  return f.gcount() == 4 && std::memcmp(m, "GGUF", 4) == 0;
}

// Per-column means from raw sums and per-slot counts (counts.size() divides sums.size()).
std::vector<float> means(const std::vector<float>& sums, const std::vector<float>& counts) {
  const size_t n_per_slot = sums.size() / counts.size();
  std::vector<float> imp(sums.size());
  for (size_t k = 0; k < counts.size(); ++k) {
    // Counts are whole numbers stored as float; llama.cpp rounds them (lround) first.
    const float count = float(std::lround(counts[k]));
    for (size_t j = 0; j < n_per_slot; ++j) {
      const size_t i = k * n_per_slot + j;
      imp[i] = count > 0.0f ? sums[i] / count : 1.0f;  // unseen expert: neutral weights
    }
  }
  return imp;
}

std::vector<float> read_f32(const gguf::File& f, const gguf::TensorInfo& t) {
  if (t.type != GgmlType::F32)
    throw_error("{}: imatrix tensor {} has type {}, expected F32", f.path(), t.name,
                ggml_type_display_name(t.type));
  auto b = f.tensor_data(t);
  std::vector<float> v(size_t(t.n_elements()));
  std::memcpy(v.data(), b.data(), v.size() * sizeof(float));
  return v;
}

// GGUF imatrix (spec a): <W>.in_sum2 holds raw sums, <W>.counts one raw count per slot.
ImportanceData load_gguf(const std::string& path) {
  gguf::File f = gguf::File::open(path);
  ImportanceData d;
  const gguf::Value* ds = f.find("imatrix.datasets");
  const gguf::Value* cc = f.find("imatrix.chunk_count");
  const gguf::Value* cs = f.find("imatrix.chunk_size");
  const bool ds_ok = ds && ds->type == gguf::ValueType::ARRAY &&
                     ds->as_array().elem == gguf::ValueType::STRING;
  if (!ds_ok || !cc || cc->type != gguf::ValueType::UINT32 || !cs ||
      cs->type != gguf::ValueType::UINT32)
    throw_error("{}: missing imatrix metadata (imatrix.datasets, imatrix.chunk_count, "
                "imatrix.chunk_size)", path);
  for (const auto& v : ds->as_array().items) d.datasets.push_back(v.as_string());
  d.chunk_count = uint32_t(cc->as_int());
  if (f.tensors().empty()) throw_error("{}: imatrix file has no tensors", path);

  constexpr std::string_view kSums = ".in_sum2", kCounts = ".counts";
  for (const auto& t : f.tensors()) {
    std::string_view n = t.name;
    if (!n.ends_with(kSums)) {
      if (n.ends_with(kCounts)) {
        std::string base(n.substr(0, n.size() - kCounts.size()));
        if (!f.find_tensor(base + std::string(kSums)))
          throw_error("{}: imatrix tensor {} has no matching {}{}", path, t.name, base, kSums);
      }
      continue;
    }
    std::string base(n.substr(0, n.size() - kSums.size()));
    const gguf::TensorInfo* ct = f.find_tensor(base + std::string(kCounts));
    if (!ct) throw_error("{}: imatrix tensor {} has no matching {}{}", path, t.name, base, kCounts);
    std::vector<float> sums = read_f32(f, t), counts = read_f32(f, *ct);
    if (counts.empty() || sums.size() % counts.size() != 0)
      throw_error("{}: imatrix entry {}: {} sums do not split into {} count slots", path, base,
                  sums.size(), counts.size());
    for (size_t k = 0; k < counts.size(); ++k)
      if (!std::isfinite(counts[k]) || counts[k] < 0)
        throw_error("{}: imatrix entry {}: count {} of slot {} (expected a finite count >= 0)", path,
                    base, counts[k], k);
    d.entries.emplace(std::move(base), means(sums, counts));
  }
  return d;
}

// Legacy .dat (spec b): per entry name, ncall, values (= mean * ncall); optional trailer.
ImportanceData load_dat(const std::string& path) {
  MappedFile m(path);
  ByteReader r(m.bytes(), path);
  ImportanceData d;
  const int32_t n_entries = r.read<int32_t>("entry count");
  if (n_entries <= 0) r.fail(0, fmt::format("bad entry count {} (not an imatrix file?)", n_entries));
  for (int32_t e = 0; e < n_entries; ++e) {
    const uint64_t at = r.offset();
    const int32_t len = r.read<int32_t>("name length");
    if (len <= 0 || uint64_t(len) > r.remaining())
      r.fail(at, fmt::format("entry {}: bad name length {}", e, len));
    std::string name = r.string(uint64_t(len), "entry name");
    const uint64_t ncall_at = r.offset();
    const int32_t ncall = r.read<int32_t>("ncall");
    // 0 is accepted (values kept as they are), as llama-quantize does; negative is garbage.
    if (ncall < 0) r.fail(ncall_at, fmt::format("entry {}: ncall {} (expected >= 0)", name, ncall));
    const uint64_t nval_at = r.offset();
    const int32_t nval = r.read<int32_t>("nval");
    if (nval <= 0) r.fail(nval_at, fmt::format("entry {}: bad value count {}", name, nval));
    auto bytes = r.bytes(checked_mul(uint64_t(nval), sizeof(float), name), "entry values");
    std::vector<float> v(static_cast<size_t>(nval));
    std::memcpy(v.data(), bytes.data(), bytes.size());
    if (ncall > 0)
      for (float& x : v) x /= float(ncall);
    if (!d.entries.emplace(name, std::move(v)).second)
      r.fail(at, fmt::format("duplicate entry {}", name));
  }
  if (!r.at_end()) {
    d.chunk_count = uint32_t(std::max(0, r.read<int32_t>("last chunk")));
    const uint64_t at = r.offset();
    const int32_t len = r.read<int32_t>("dataset name length");
    if (len < 0 || uint64_t(len) > r.remaining())
      r.fail(at, fmt::format("bad dataset name length {}", len));
    d.datasets.push_back(r.string(uint64_t(len), "dataset name"));
    if (!r.at_end()) r.fail(r.offset(), fmt::format("{} unexpected bytes after the trailer", r.remaining()));
  }
  return d;
}

}  // namespace

ImportanceData importance_from(const imatrix::Imatrix& m) {
  ImportanceData d;
  d.datasets = m.datasets;
  d.chunk_count = m.chunk_count;
  for (const auto& [name, e] : m.entries) {
    if (e.counts.empty() || e.sums.size() % e.counts.size() != 0)
      throw_error("imatrix entry {}: {} sums do not split into {} count slots", name, e.sums.size(),
                  e.counts.size());
    for (float v : e.sums)
      if (!std::isfinite(v)) throw_error("imatrix entry {}: value {} (expected finite sums)", name, v);
    d.entries.emplace(name, means(e.sums, e.counts));
  }
  return d;
}

ImportanceData load_importance(const std::string& path) {
  ImportanceData d = starts_with_gguf_magic(path) ? load_gguf(path) : load_dat(path);
  for (const auto& [name, v] : d.entries)
    for (size_t i = 0; i < v.size(); ++i)
      if (!std::isfinite(v[i]))
        throw_error("{}: imatrix entry {} holds a non-finite value {} at index {}", path, name,
                    v[i], i);
  return d;
}

void filter_importance(ImportanceData& data, const std::vector<std::string>& include,
                       const std::vector<std::string>& exclude) {
  auto contains_any = [](const std::string& name, const std::vector<std::string>& subs) {
    for (const auto& s : subs)
      if (name.find(s) != std::string::npos) return true;
    return false;
  };
  std::erase_if(data.entries, [&](const auto& kv) {
    if (!include.empty() && !contains_any(kv.first, include)) return true;
    return contains_any(kv.first, exclude);
  });
}

}  // namespace imq::quantize
