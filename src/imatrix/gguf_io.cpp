// The GGUF imatrix format (spec a): general.type = "imatrix", imatrix.datasets,
// imatrix.chunk_count, imatrix.chunk_size, then per weight W (sorted by name) the F32 tensors
// W.in_sum2 [n, n_slots] and W.counts [1, n_slots] (ggml_n_dims drops trailing 1s).
#include <cstring>

#include "imq/error.h"
#include "imq/ggml_types.h"
#include "imq/gguf.h"
#include "imq/imatrix.h"
#include "imatrix/readers.h"

namespace imq::imatrix {

namespace {

constexpr std::string_view kSums = ".in_sum2";
constexpr std::string_view kCounts = ".counts";

std::vector<float> f32_data(const gguf::File& f, const gguf::TensorInfo& t) {
  if (t.type != GgmlType::F32)
    throw_error("{}: tensor {} has type {}, expected F32", f.path(), t.name,
                ggml_type_display_name(t.type));
  auto bytes = f.tensor_data(t);
  std::vector<float> v(bytes.size() / sizeof(float));
  if (!v.empty()) std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
  return v;
}

uint32_t u32_key(const gguf::File& f, std::string_view key) {
  const gguf::Value* v = f.find(key);
  if (!v) return 0;
  if (v->type != gguf::ValueType::UINT32)
    throw_error("{}: key {} has type {}, expected UINT32", f.path(), key, gguf::value_type_name(v->type));
  return std::get<uint32_t>(v->data);
}

std::vector<uint8_t> f32_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(float));
  if (!b.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

}  // namespace

Imatrix read_gguf(const std::string& path, const ReadOptions& opt) {
  return parse_gguf(gguf::File::open(path), opt);
}

Imatrix parse_gguf(const gguf::File& f, const ReadOptions& opt) {
  const std::string& path = f.path();
  if (const gguf::Value* t = f.find("general.type")) {
    if (t->type != gguf::ValueType::STRING || t->as_string() != "imatrix")
      throw_error("{}: not an imatrix file (general.type is {}, expected \"imatrix\")", path,
                  t->type == gguf::ValueType::STRING ? "\"" + t->as_string() + "\""
                                                     : std::string(gguf::value_type_name(t->type)));
  }
  Imatrix m;
  if (const gguf::Value* d = f.find("imatrix.datasets")) {
    if (d->type != gguf::ValueType::ARRAY || d->as_array().elem != gguf::ValueType::STRING)
      throw_error("{}: key imatrix.datasets is not an array of strings", path);
    for (const auto& item : d->as_array().items) m.datasets.push_back(item.as_string());
  }
  m.chunk_count = u32_key(f, "imatrix.chunk_count");
  m.chunk_size = u32_key(f, "imatrix.chunk_size");

  for (const auto& t : f.tensors()) {
    const bool is_sums = t.name.ends_with(kSums), is_counts = t.name.ends_with(kCounts);
    if (!is_sums && !is_counts) continue;  // llama.cpp ignores other tensors
    const std::string base = t.name.substr(0, t.name.size() - (is_sums ? kSums : kCounts).size());
    const std::string partner = base + std::string(is_sums ? kCounts : kSums);
    const gguf::TensorInfo* p = f.find_tensor(partner);
    if (!p) throw_error("{}: tensor {} has no partner {}", path, t.name, partner);
    if (!is_sums) continue;  // the pair is read once, from its in_sum2
    Entry e;
    e.sums = f32_data(f, t);
    e.counts = f32_data(f, *p);
    if (e.counts.empty() || e.sums.empty() || e.sums.size() % e.counts.size() != 0)
      throw_error("{}: tensor {}: {} sums are not a non-empty multiple of {} counts", path, base,
                  e.sums.size(), e.counts.size());
    m.entries.emplace(base, std::move(e));
  }
  if (m.entries.empty()) throw_error("{}: no imatrix tensors (<name>.in_sum2 / <name>.counts)", path);
  validate(m, path, opt.allow_non_finite);
  return m;
}

void write_gguf(const Imatrix& m, const std::string& path) {
  if (m.chunk_size == 0) throw_error("{}: cannot write an imatrix with an unknown chunk size", path);
  validate(m, path, false);
  gguf::Writer w;
  w.set("general.type", gguf::Value::str("imatrix"));
  w.set("imatrix.datasets", gguf::Value::string_array(m.datasets));
  w.set("imatrix.chunk_count", gguf::Value::u32(m.chunk_count));
  w.set("imatrix.chunk_size", gguf::Value::u32(m.chunk_size));
  for (const auto& [name, e] : m.entries) {
    const int64_t n_slots = int64_t(e.counts.size());
    const int64_t n = int64_t(e.sums.size()) / n_slots;
    const int64_t sums_ne[2] = {n, n_slots}, counts_ne[2] = {1, n_slots};
    const size_t dims = n_slots > 1 ? 2 : 1;
    w.add_tensor(name + std::string(kSums), GgmlType::F32,
                 std::span<const int64_t>(sums_ne, dims), f32_bytes(e.sums));
    w.add_tensor(name + std::string(kCounts), GgmlType::F32,
                 std::span<const int64_t>(counts_ne, dims), f32_bytes(e.counts));
  }
  w.write(path);
}

}  // namespace imq::imatrix
