// GGUF reader: parses and validates the whole header at open(); tensor data stays mapped.
// Every count and length is checked against the bytes left before anything is allocated.
#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "core/byte_reader.h"
#include "core/checked.h"
#include "core/mapped_file.h"
#include "imq/gguf.h"

namespace imq::gguf {

namespace {

constexpr uint32_t kMaxNameLen = 64;  // ggml's GGML_MAX_NAME: names must be shorter
constexpr int kMaxArrayDepth = 8;

// Smallest encoding of one value of a type: bounds absurd counts before allocating.
uint64_t min_value_size(ValueType t) {
  switch (t) {
    case ValueType::UINT8: case ValueType::INT8: case ValueType::BOOL: return 1;
    case ValueType::UINT16: case ValueType::INT16: return 2;
    case ValueType::UINT32: case ValueType::INT32: case ValueType::FLOAT32: return 4;
    case ValueType::UINT64: case ValueType::INT64: case ValueType::FLOAT64: return 8;
    case ValueType::STRING: return 8;
    case ValueType::ARRAY: return 12;
  }
  return 1;
}

bool valid_value_type(int32_t t) { return t >= 0 && t <= 12; }

class Parser {
 public:
  explicit Parser(ByteReader& r) : r_(r) {}

  std::string read_string(std::string_view what) {
    const uint64_t at = r_.offset();
    const uint64_t n = r_.read<uint64_t>(what);
    if (n > r_.remaining())
      r_.fail(at, fmt::format("{} length {} runs past the end of the file ({} bytes left)", what, n,
                              r_.remaining()));
    return r_.string(n, what);
  }

  Value read_value(ValueType t, std::string_view key, int depth) {
    switch (t) {
      case ValueType::UINT8: return {t, r_.read<uint8_t>(key)};
      case ValueType::INT8: return {t, r_.read<int8_t>(key)};
      case ValueType::UINT16: return {t, r_.read<uint16_t>(key)};
      case ValueType::INT16: return {t, r_.read<int16_t>(key)};
      case ValueType::UINT32: return {t, r_.read<uint32_t>(key)};
      case ValueType::INT32: return {t, r_.read<int32_t>(key)};
      case ValueType::FLOAT32: return {t, r_.read<float>(key)};
      case ValueType::UINT64: return {t, r_.read<uint64_t>(key)};
      case ValueType::INT64: return {t, r_.read<int64_t>(key)};
      case ValueType::FLOAT64: return {t, r_.read<double>(key)};
      case ValueType::BOOL: {
        const uint64_t at = r_.offset();
        uint8_t b = r_.read<uint8_t>(key);
        if (b > 1) r_.fail(at, fmt::format("key {}: BOOL value {} is not 0 or 1", key, b));
        return {t, b != 0};
      }
      case ValueType::STRING: return {t, read_string(key)};
      case ValueType::ARRAY: {
        const uint64_t at = r_.offset();
        if (depth >= kMaxArrayDepth) r_.fail(at, fmt::format("key {}: arrays nested too deeply", key));
        const int32_t et = r_.read<int32_t>(key);
        if (!valid_value_type(et))
          r_.fail(at, fmt::format("key {}: unknown array element type {} (expected 0..12)", key, et));
        const uint64_t count_at = r_.offset();
        const uint64_t n = r_.read<uint64_t>(key);
        const ValueType elem = ValueType(et);
        if (n > r_.remaining() / min_value_size(elem))
          r_.fail(count_at, fmt::format("key {}: array of {} {} runs past the end of the file", key, n,
                                        value_type_name(elem)));
        Array a{elem, {}};
        a.items.reserve(n);
        for (uint64_t i = 0; i < n; ++i) a.items.push_back(read_value(elem, key, depth + 1));
        return {t, std::move(a)};
      }
    }
    r_.fail(r_.offset(), "unreachable");
  }

 private:
  ByteReader& r_;
};

}  // namespace

struct File::Impl {
  MappedFile map;
  uint32_t version = 0;
  uint64_t alignment = 32;
  uint64_t data_offset = 0;
  std::vector<KeyValue> kvs;
  std::vector<TensorInfo> tensors;
  std::unordered_map<std::string, size_t> kv_index, tensor_index;

  Impl(const std::string& path, FileAccess access) : map(path, access) {}
  explicit Impl(MappedFile m) : map(std::move(m)) {}
};

namespace {

// Q3_HIFI's id lies outside ggml's range, but nothing stops another tool from using it for a
// different layout: a file must say that imq's Q3_HIFI is meant (ggml_types.h).
void check_q3_hifi_version(const std::vector<TensorInfo>& tensors, const Value* version,
                           const std::string& path) {
  auto t = std::find_if(tensors.begin(), tensors.end(), [](const TensorInfo& ti) {
    return ti.type == GgmlType::Q3_HIFI;
  });
  if (t == tensors.end()) return;
  if (!version)
    throw_error("{}: tensor {} has type id {:#x} (imq Q3_HIFI) but the file lacks {}: written by "
                "another tool?", path, t->name, uint32_t(t->type), kQ3HifiVersionKey);
  const Value& v = *version;
  if (v.type != ValueType::UINT32 || std::get<uint32_t>(v.data) != kQ3HifiVersion)
    throw_error("{}: {} is {} {}, this imq reads Q3_HIFI version {} (UINT32)", path,
                kQ3HifiVersionKey, value_type_name(v.type),
                v.type == ValueType::UINT32 ? std::to_string(std::get<uint32_t>(v.data)) : "",
                kQ3HifiVersion);
}

}  // namespace

File::File(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
File::~File() = default;
File::File(File&&) noexcept = default;
File& File::operator=(File&&) noexcept = default;

File File::open(const std::string& path) { return open(path, OpenOptions{}); }

File File::open(const std::string& path, const OpenOptions& options) {
  return parse(std::make_unique<Impl>(path, options.mmap ? FileAccess::kMap : FileAccess::kRead));
}

File File::from_memory(std::string name, std::vector<uint8_t> bytes) {
  return parse(std::make_unique<Impl>(MappedFile(std::move(name), std::move(bytes))));
}

File File::parse(std::unique_ptr<Impl> impl) {
  const std::string path = impl->map.path();
  ByteReader r(impl->map.bytes(), path);
  Parser p(r);

  if (r.size() < 4) r.fail(0, fmt::format("file too short for a GGUF header ({} bytes)", r.size()));
  auto magic = r.bytes(4, "magic");
  if (std::string_view(reinterpret_cast<const char*>(magic.data()), 4) != "GGUF")
    r.fail(0, "bad magic: expected \"GGUF\"");
  const uint32_t version = r.read<uint32_t>("version");
  if ((version & 0xffff) == 0)
    r.fail(4, fmt::format("version {:#x} looks byte-swapped (big-endian files are not supported)", version));
  if (version != 3 && version != 2)
    r.fail(4, fmt::format("unsupported GGUF version {} (expected 3)", version));
  impl->version = version;
  const int64_t n_tensors = r.read<int64_t>("tensor count");
  const int64_t n_kv = r.read<int64_t>("metadata count");
  if (n_tensors < 0) r.fail(8, fmt::format("negative tensor count {}", n_tensors));
  if (n_kv < 0) r.fail(16, fmt::format("negative metadata count {}", n_kv));
  // Each KV needs >= 8 (key len) + 1 + 4 (type) + 1 bytes; each tensor info >= 8+1+4+8+4+8.
  if (uint64_t(n_kv) > r.remaining() / 14)
    r.fail(16, fmt::format("metadata count {} cannot fit in the {} bytes left", n_kv, r.remaining()));
  if (uint64_t(n_tensors) > r.remaining() / 33)
    r.fail(8, fmt::format("tensor count {} cannot fit in the {} bytes left", n_tensors, r.remaining()));

  impl->kvs.reserve(size_t(n_kv));
  for (int64_t i = 0; i < n_kv; ++i) {
    const uint64_t at = r.offset();
    std::string key = p.read_string("metadata key");
    if (key.empty()) r.fail(at, fmt::format("metadata key {} is empty", i));
    if (impl->kv_index.count(key)) r.fail(at, fmt::format("duplicate metadata key {}", key));
    const uint64_t tat = r.offset();
    const int32_t t = r.read<int32_t>("value type");
    if (!valid_value_type(t)) r.fail(tat, fmt::format("key {}: unknown value type {} (expected 0..12)", key, t));
    Value v = p.read_value(ValueType(t), key, 0);
    impl->kv_index.emplace(key, impl->kvs.size());
    impl->kvs.push_back({std::move(key), std::move(v)});
  }

  if (auto it = impl->kv_index.find("general.alignment"); it != impl->kv_index.end()) {
    const Value& v = impl->kvs[it->second].value;
    if (v.type != ValueType::UINT32)
      throw_error("{}: general.alignment has type {}, expected UINT32", path, value_type_name(v.type));
    const uint32_t a = std::get<uint32_t>(v.data);
    if (a == 0 || (a & (a - 1)) != 0)
      throw_error("{}: general.alignment {} is not a power of two", path, a);
    impl->alignment = a;
  }

  uint64_t expected_offset = 0;  // tensors must be packed in order, each padded to alignment
  impl->tensors.reserve(size_t(n_tensors));
  for (int64_t i = 0; i < n_tensors; ++i) {
    const uint64_t at = r.offset();
    TensorInfo t;
    t.name = p.read_string("tensor name");
    if (t.name.size() >= kMaxNameLen)
      r.fail(at, fmt::format("tensor name {} is {} bytes long (limit {})", t.name, t.name.size(), kMaxNameLen - 1));
    if (impl->tensor_index.count(t.name)) r.fail(at, fmt::format("duplicate tensor name {}", t.name));
    const uint64_t dat = r.offset();
    t.n_dims = r.read<uint32_t>("tensor n_dims");
    if (t.n_dims < 1 || t.n_dims > 4)
      r.fail(dat, fmt::format("tensor {}: n_dims {} (expected 1..4)", t.name, t.n_dims));
    // A zero dimension makes the tensor empty, but must not hide absurd other dimensions: the
    // partial products of n_rows() and n_elements() would overflow. So the non-zero ones are
    // bounded together.
    uint64_t extent = 1;  // product of the non-zero dimensions
    bool empty = false;
    for (uint32_t d = 0; d < t.n_dims; ++d) {
      const uint64_t nat = r.offset();
      t.ne[d] = r.read<int64_t>("tensor dimension");
      if (t.ne[d] < 0) r.fail(nat, fmt::format("tensor {}: negative dimension {}", t.name, t.ne[d]));
      if (t.ne[d] == 0) empty = true;
      else extent = checked_mul(extent, uint64_t(t.ne[d]), fmt::format("{}: tensor {} element count", path, t.name));
    }
    if (extent > (uint64_t(1) << 56))
      r.fail(dat, fmt::format("tensor {}: {} elements{} is absurd", t.name, extent,
                              empty ? " (not counting its zero dimensions)" : ""));
    const uint64_t n_el = empty ? 0 : extent;
    const uint64_t tyat = r.offset();
    t.type = GgmlType(r.read<uint32_t>("tensor type"));
    auto info = ggml_type_info(t.type);
    if (!info) r.fail(tyat, fmt::format("tensor {}: unknown type id {}", t.name, uint32_t(t.type)));
    if (t.ne[0] % info->block_size != 0)
      r.fail(dat, fmt::format("tensor {}: row length {} is not a multiple of {}'s block size {}", t.name, t.ne[0],
                              info->name, info->block_size));
    t.n_bytes = n_el / info->block_size * info->type_size;
    const uint64_t oat = r.offset();
    t.offset = r.read<uint64_t>("tensor offset");
    if (t.offset != expected_offset)
      r.fail(oat, fmt::format("tensor {}: data offset {} (expected {}: tensor data must be packed in order, "
                              "aligned to {}, without gaps or overlaps)",
                              t.name, t.offset, expected_offset, impl->alignment));
    const uint64_t padded = checked_mul((checked_add(t.n_bytes, impl->alignment - 1, path)) / impl->alignment,
                                        impl->alignment, path);
    expected_offset = checked_add(expected_offset, padded, path);
    impl->tensor_index.emplace(t.name, impl->tensors.size());
    impl->tensors.push_back(std::move(t));
  }

  auto q3_hifi = impl->kv_index.find(std::string(kQ3HifiVersionKey));
  check_q3_hifi_version(impl->tensors,
                        q3_hifi == impl->kv_index.end() ? nullptr : &impl->kvs[q3_hifi->second].value,
                        path);

  const uint64_t a = impl->alignment;
  impl->data_offset = (r.offset() + a - 1) / a * a;
  for (const auto& t : impl->tensors) {
    const uint64_t end = checked_add(checked_add(impl->data_offset, t.offset, path), t.n_bytes, path);
    if (end > r.size())
      throw_error("{}: offset {}: tensor {} data ({} bytes) runs past the end of the file ({} bytes)", path,
                  impl->data_offset + t.offset, t.name, t.n_bytes, r.size());
  }
  return File(std::move(impl));
}

const std::string& File::path() const { return impl_->map.path(); }
uint32_t File::version() const { return impl_->version; }
uint64_t File::alignment() const { return impl_->alignment; }
uint64_t File::data_offset() const { return impl_->data_offset; }
const std::vector<KeyValue>& File::kvs() const { return impl_->kvs; }
const std::vector<TensorInfo>& File::tensors() const { return impl_->tensors; }
std::span<const uint8_t> File::bytes() const { return impl_->map.bytes(); }
bool File::mapped() const { return impl_->map.mapped(); }

const Value* File::find(std::string_view key) const {
  auto it = impl_->kv_index.find(std::string(key));
  return it == impl_->kv_index.end() ? nullptr : &impl_->kvs[it->second].value;
}

const Value& File::get(std::string_view key) const {
  if (const Value* v = find(key)) return *v;
  throw_error("{}: missing metadata key {}", path(), key);
}

std::string File::get_string(std::string_view key) const {
  const Value& v = get(key);
  if (v.type != ValueType::STRING)
    throw_error("{}: key {} has type {}, expected STRING", path(), key, value_type_name(v.type));
  return v.as_string();
}

int64_t File::get_int(std::string_view key) const {
  const Value& v = get(key);
  if (v.type == ValueType::STRING || v.type == ValueType::ARRAY || v.type == ValueType::FLOAT32 ||
      v.type == ValueType::FLOAT64)
    throw_error("{}: key {} has type {}, expected an integer", path(), key, value_type_name(v.type));
  try {
    return v.as_int();
  } catch (const Error& e) {
    throw_error("{}: key {}: {}", path(), key, e.what());
  }
}

std::optional<int64_t> File::find_int(std::string_view key) const {
  if (!find(key)) return std::nullopt;
  return get_int(key);
}

std::optional<double> File::find_float(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  if (v->type == ValueType::STRING || v->type == ValueType::ARRAY)
    throw_error("{}: key {} has type {}, expected a number", path(), key, value_type_name(v->type));
  return v->as_double();
}

const TensorInfo* File::find_tensor(std::string_view name) const {
  auto it = impl_->tensor_index.find(std::string(name));
  return it == impl_->tensor_index.end() ? nullptr : &impl_->tensors[it->second];
}

const TensorInfo& File::tensor(std::string_view name) const {
  if (const TensorInfo* t = find_tensor(name)) return *t;
  throw_error("{}: missing tensor {}", path(), name);
}

void File::drop_pages(const TensorInfo& t) const { impl_->map.drop_pages(tensor_data(t)); }

std::span<const uint8_t> File::tensor_data(const TensorInfo& t) const {
  return impl_->map.bytes().subspan(impl_->data_offset + t.offset, t.n_bytes);
}

}  // namespace imq::gguf
