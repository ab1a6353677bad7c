// Format detection, loading and saving by format, semantic checks, coverage and merging.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "core/mapped_file.h"
#include "imq/error.h"
#include "imq/imatrix.h"

namespace imq::imatrix {

std::string_view format_name(Format f) {
  switch (f) {
    case Format::Gguf: return "gguf";
    case Format::Dat: return "dat";
    case Format::Cimatrix: return "cimatrix";
  }
  return "?";
}

Format parse_format(std::string_view name) {
  if (name == "gguf") return Format::Gguf;
  if (name == "dat") return Format::Dat;
  if (name == "cimatrix") return Format::Cimatrix;
  throw_error("unknown imatrix format '{}' (expected gguf or dat)", name);
}

Format detect_format(const std::string& path) {
  MappedFile f(path);
  auto b = f.bytes();
  if (b.size() >= 4 && std::memcmp(b.data(), "GGUF", 4) == 0) return Format::Gguf;
  if (path.ends_with(".cimatrix")) return Format::Cimatrix;
  return Format::Dat;
}

Imatrix load(const std::string& path, const ReadOptions& opt) {
  switch (detect_format(path)) {
    case Format::Gguf: return read_gguf(path, opt);
    case Format::Cimatrix: return read_cimatrix(path, opt);
    case Format::Dat: break;
  }
  return read_dat(path, opt);
}

std::vector<std::string> save(const Imatrix& m, const std::string& path, Format format) {
  switch (format) {
    case Format::Gguf: write_gguf(m, path); return {};
    case Format::Dat: return write_dat(m, path, m.chunk_size);
    case Format::Cimatrix: break;
  }
  throw_error("{}: writing the .cimatrix format is not supported (use gguf or dat)", path);
}

void validate(const Imatrix& m, const std::string& source, bool allow_non_finite) {
  for (const auto& [name, e] : m.entries) {
    if (e.counts.empty() || e.sums.empty() || e.sums.size() % e.counts.size() != 0)
      throw_error("{}: tensor {}: {} sums are not a non-empty multiple of {} counts", source, name,
                  e.sums.size(), e.counts.size());
    for (size_t k = 0; k < e.counts.size(); ++k)
      if (!std::isfinite(e.counts[k]) || e.counts[k] < 0)
        throw_error("{}: tensor {}: count {} of slot {} (expected a finite number >= 0)", source, name,
                    e.counts[k], k);
    for (size_t i = 0; i < e.sums.size(); ++i) {
      const float v = e.sums[i];
      if (std::isnan(v) || std::isinf(v)) {
        if (allow_non_finite) continue;
        throw_error("{}: tensor {}: value {} is {} (expected a finite sum of squares)", source, name, i, v);
      }
      if (v < 0) throw_error("{}: tensor {}: value {} is {} (a sum of squares cannot be negative)", source, name, i, v);
    }
  }
}

std::vector<CoverageIssue> coverage_issues(const Imatrix& m) {
  std::vector<CoverageIssue> out;
  for (const auto& [name, e] : m.entries) {
    CoverageIssue c{name, e.counts.size(), 0, 0};
    for (float v : e.counts) c.n_empty += v == 0;
    for (float v : e.sums) c.n_non_finite += !std::isfinite(v);
    if (c.n_empty || c.n_non_finite) out.push_back(std::move(c));
  }
  return out;
}

std::string describe(const CoverageIssue& c) {
  std::string s = c.name + ":";
  if (c.n_empty == c.n_slots)
    s += " no data (count 0)";
  else if (c.n_empty)
    s += fmt::format(" {} of {} experts have no data (count 0)", c.n_empty, c.n_slots);
  if (c.n_non_finite) s += fmt::format("{} {} NaN/Inf values", c.n_empty ? "," : "", c.n_non_finite);
  return s;
}

namespace {

void check_compatible(const std::string& name, const Entry& a, const Entry& b, std::string_view a_name,
                      std::string_view b_name) {
  if (a.sums.size() != b.sums.size())
    throw_error("tensor {}: {} values in {} but {} in {}", name, a.sums.size(), a_name, b.sums.size(), b_name);
  const size_t na = a.counts.size(), nb = b.counts.size();
  if (na != nb && na != 1 && nb != 1)
    throw_error("tensor {}: {} count slots in {} but {} in {}", name, na, a_name, nb, b_name);
}

}  // namespace

uint32_t chunks_in(const Imatrix& m) {
  if (m.chunk_size == 0) return 0;
  int64_t max_count = 0;
  for (const auto& [name, e] : m.entries)
    for (float c : e.counts) max_count = std::max<int64_t>(max_count, std::llround(c));
  return uint32_t(std::min<int64_t>(max_count / int64_t(m.chunk_size), UINT32_MAX));
}

void accumulate(Imatrix& acc, const Imatrix& b, std::string_view acc_name, std::string_view b_name) {
  // Check every entry first so that a mismatch leaves `acc` untouched.
  for (const auto& [name, e] : b.entries)
    if (auto it = acc.entries.find(name); it != acc.entries.end())
      check_compatible(name, it->second, e, acc_name, b_name);
  for (const auto& [name, e] : b.entries) {
    auto [it, inserted] = acc.entries.try_emplace(name, e);
    if (inserted) continue;
    Entry& a = it->second;
    for (size_t i = 0; i < a.sums.size(); ++i) a.sums[i] += e.sums[i];
    if (a.counts.size() == 1 && e.counts.size() > 1) a.counts.assign(e.counts.size(), a.counts[0]);
    if (e.counts.size() == 1)
      for (float& c : a.counts) c += e.counts[0];
    else
      for (size_t k = 0; k < a.counts.size(); ++k) a.counts[k] += e.counts[k];
  }
  acc.datasets.insert(acc.datasets.end(), b.datasets.begin(), b.datasets.end());
  acc.chunk_count = chunks_in(acc);
}

Imatrix merge(std::span<const MergeInput> inputs, const MergeOptions& opt) {
  if (inputs.empty()) throw_error("merge: no input imatrix");
  const MergeInput* first_known = nullptr;
  for (const auto& in : inputs) {
    if (in.data.chunk_size == 0) continue;
    if (!first_known) {
      first_known = &in;
    } else if (in.data.chunk_size != first_known->data.chunk_size && !opt.allow_chunk_size_mismatch) {
      throw_error("chunk sizes differ: {} has {} tokens per chunk, {} has {} (merging them mixes "
                  "different context lengths; override with --allow-chunk-size-mismatch)",
                  first_known->path, first_known->data.chunk_size, in.path, in.data.chunk_size);
    }
  }
  Imatrix acc;
  acc.chunk_size = opt.chunk_size ? opt.chunk_size : first_known ? first_known->data.chunk_size : 0;
  if (acc.chunk_size == 0) throw_error("merge: the chunk size of {} is unknown (give it with -c)", inputs[0].path);
  // Remember which file brought each tensor, so that a mismatch names both files.
  std::map<std::string, const std::string*> origin;
  for (const auto& in : inputs) {
    for (const auto& [name, e] : in.data.entries) {
      auto [it, inserted] = origin.try_emplace(name, &in.path);
      if (!inserted) check_compatible(name, acc.entries.at(name), e, *it->second, in.path);
    }
    accumulate(acc, in.data, "the merged inputs", in.path);
  }
  acc.chunk_count = chunks_in(acc);
  return acc;
}

}  // namespace imq::imatrix
