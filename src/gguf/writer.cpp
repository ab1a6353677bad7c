// GGUF writer: metadata and tensor infos, then tensor data, each padded to the alignment;
// written through AtomicFile (temporary file renamed into place).
#include <unordered_set>

#include "core/atomic_file.h"
#include "imq/gguf.h"

namespace imq::gguf {

namespace {

class Sink {
 public:
  virtual ~Sink() = default;
  virtual void put(const void* p, size_t n) = 0;
  template <typename T>
  void pod(T v) { put(&v, sizeof(T)); }
  void str(const std::string& s) {
    pod<uint64_t>(s.size());
    put(s.data(), s.size());
  }
};

class CountingSink : public Sink {
 public:
  void put(const void*, size_t n) override { n_ += n; }
  uint64_t n_ = 0;
};

class FileSink : public Sink {
 public:
  explicit FileSink(AtomicFile& f) : f_(f) { buf_.reserve(1 << 20); }  // reserve: also avoids a GCC 12 false -Wstringop-overflow
  void put(const void* p, size_t n) override {
    buf_.insert(buf_.end(), static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + n);
    if (buf_.size() >= (1 << 20) - 4096) flush();
  }
  void flush() {
    f_.write(buf_.data(), buf_.size());
    buf_.clear();
  }

 private:
  AtomicFile& f_;
  std::vector<uint8_t> buf_;
};

class VectorSink : public Sink {
 public:
  explicit VectorSink(std::vector<uint8_t>& v) : v_(v) {}
  void put(const void* p, size_t n) override {
    v_.insert(v_.end(), static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + n);
  }

 private:
  std::vector<uint8_t>& v_;
};

void put_value(Sink& s, const Value& v) {
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string>) {
          s.str(x);
        } else if constexpr (std::is_same_v<T, Array>) {
          s.pod<int32_t>(int32_t(x.elem));
          s.pod<uint64_t>(x.items.size());
          for (const auto& it : x.items) {
            if (it.type != x.elem)
              throw_error("array of {} holds a {}", value_type_name(x.elem), value_type_name(it.type));
            put_value(s, it);
          }
        } else if constexpr (std::is_same_v<T, bool>) {
          s.pod<uint8_t>(x ? 1 : 0);
        } else {
          s.pod<T>(x);
        }
      },
      v.data);
}

uint64_t pad(uint64_t n, uint64_t a) { return (n + a - 1) / a * a; }

}  // namespace

Writer::Writer() = default;
Writer::~Writer() = default;

void Writer::set(std::string key, Value v) {
  remove(key);
  kvs_.push_back({std::move(key), std::move(v)});
}

void Writer::remove(std::string_view key) {
  std::erase_if(kvs_, [&](const KeyValue& kv) { return kv.key == key; });
}

void Writer::set_alignment(uint64_t a) {
  if (a == 0 || (a & (a - 1)) != 0) throw_error("alignment {} is not a power of two", a);
  alignment_ = a;
  if (a != 32) set("general.alignment", Value::u32(uint32_t(a)));
}

// n_bytes: the data size given (checked), or nullopt for a deferred tensor.
static TensorInfo make_info(std::string name, GgmlType type, std::span<const int64_t> ne,
                            std::optional<size_t> n_bytes) {
  auto info = ggml_type_info(type);
  if (!info) throw_error("tensor {}: unknown type id {}", name, uint32_t(type));
  if (ne.empty() || ne.size() > 4) throw_error("tensor {}: {} dimensions (expected 1..4)", name, ne.size());
  if (name.size() >= 64) throw_error("tensor name {} is longer than 63 bytes", name);
  TensorInfo t;
  t.name = std::move(name);
  t.type = type;
  t.n_dims = uint32_t(ne.size());
  for (size_t i = 0; i < ne.size(); ++i) t.ne[i] = ne[i];
  if (t.ne[0] % info->block_size != 0)
    throw_error("tensor {}: row length {} is not a multiple of {}", t.name, t.ne[0], info->block_size);
  t.n_bytes = uint64_t(t.n_elements()) / info->block_size * info->type_size;
  if (n_bytes && t.n_bytes != *n_bytes)
    throw_error("tensor {}: {} data bytes given, {} expected for {} {}", t.name, *n_bytes, t.n_bytes,
                t.n_elements(), info->name);
  return t;
}

void Writer::add_tensor(std::string name, GgmlType type, std::span<const int64_t> ne, std::vector<uint8_t> data) {
  Tensor t{make_info(std::move(name), type, ne, data.size()), std::move(data), {}};
  for (const auto& o : tensors_)
    if (o.info.name == t.info.name) throw_error("duplicate tensor name {}", t.info.name);
  tensors_.push_back(std::move(t));
}

void Writer::add_tensor_view(std::string name, GgmlType type, std::span<const int64_t> ne,
                             std::span<const uint8_t> data) {
  Tensor t{make_info(std::move(name), type, ne, data.size()), {}, data};
  for (const auto& o : tensors_)
    if (o.info.name == t.info.name) throw_error("duplicate tensor name {}", t.info.name);
  tensors_.push_back(std::move(t));
}

void Writer::add_tensor_deferred(std::string name, GgmlType type, std::span<const int64_t> ne) {
  Tensor t{make_info(std::move(name), type, ne, std::nullopt), {}, {}, true};
  for (const auto& o : tensors_)
    if (o.info.name == t.info.name) throw_error("duplicate tensor name {}", t.info.name);
  tensors_.push_back(std::move(t));
}

static void put_header(Sink& s, const std::vector<KeyValue>& kvs, const std::vector<TensorInfo>& infos) {
  s.put("GGUF", 4);
  s.pod<uint32_t>(3);
  s.pod<int64_t>(int64_t(infos.size()));
  s.pod<int64_t>(int64_t(kvs.size()));
  for (const auto& kv : kvs) {
    s.str(kv.key);
    s.pod<int32_t>(int32_t(kv.value.type));
    put_value(s, kv.value);
  }
  for (const auto& t : infos) {
    s.str(t.name);
    s.pod<uint32_t>(t.n_dims);
    for (uint32_t d = 0; d < t.n_dims; ++d) s.pod<int64_t>(t.ne[d]);
    s.pod<uint32_t>(uint32_t(t.type));
    s.pod<uint64_t>(t.offset);
  }
}

static std::vector<TensorInfo> layout(const auto& tensors, uint64_t alignment) {
  std::vector<TensorInfo> infos;
  uint64_t off = 0;
  for (const auto& t : tensors) {
    TensorInfo i = t.info;
    i.offset = off;
    off += pad(i.n_bytes, alignment);
    infos.push_back(std::move(i));
  }
  return infos;
}

uint64_t Writer::header_size() const {
  CountingSink c;
  put_header(c, kvs_, layout(tensors_, alignment_));
  return c.n_;
}

uint64_t Writer::file_size() const {
  uint64_t n = pad(header_size(), alignment_);
  for (const auto& t : tensors_) n += pad(t.info.n_bytes, alignment_);
  return n;
}

void Writer::write(const std::string& path) const { write(path, nullptr); }

std::vector<uint8_t> Writer::to_bytes() const {
  std::unordered_set<std::string> keys;
  for (const auto& kv : kvs_)
    if (!keys.insert(kv.key).second) throw_error("GGUF image: duplicate metadata key {}", kv.key);
  std::vector<uint8_t> out;
  out.reserve(file_size());
  VectorSink s(out);
  put_header(s, kvs_, layout(tensors_, alignment_));
  out.resize(pad(out.size(), alignment_), 0);
  for (const Tensor& t : tensors_) {
    if (t.deferred) throw_error("GGUF image: tensor {} has no data", t.info.name);
    auto b = t.bytes();
    out.insert(out.end(), b.begin(), b.end());
    out.resize(pad(out.size(), alignment_), 0);
  }
  return out;
}

void Writer::write(const std::string& path, const Producer& produce) const {
  std::unordered_set<std::string> keys;
  for (const auto& kv : kvs_)
    if (!keys.insert(kv.key).second) throw_error("{}: duplicate metadata key {}", path, kv.key);
  auto infos = layout(tensors_, alignment_);
  AtomicFile f(path);
  FileSink s(f);
  put_header(s, kvs_, infos);
  s.flush();
  f.write_zeros(pad(f.tell(), alignment_) - f.tell());
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const Tensor& t = tensors_[i];
    if (t.deferred && !produce) throw_error("{}: no data for tensor {}", path, t.info.name);
    auto b = t.deferred ? produce(i) : t.bytes();
    if (b.size() != t.info.n_bytes)
      throw_error("{}: tensor {}: {} bytes produced, {} expected", path, t.info.name, b.size(),
                  t.info.n_bytes);
    f.write(b.data(), b.size());
    f.write_zeros(pad(b.size(), alignment_) - b.size());
  }
  f.commit();
}

}  // namespace imq::gguf
