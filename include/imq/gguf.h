// GGUF v3 container: a validating, memory-mapped reader and an atomic writer (spec h).
//
//   bytes[4] "GGUF" | u32 version=3 | i64 n_tensors | i64 n_kv
//   n_kv    x { string key | i32 type | value }          (string = u64 len + bytes)
//   n_tensor x { string name | u32 n_dims | i64 ne[n_dims] | i32 ggml_type | u64 offset }
//   zero padding to `alignment` | tensor data, each tensor padded to `alignment`
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "imq/error.h"
#include "imq/ggml_types.h"

namespace imq::gguf {

enum class ValueType : int32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
std::string_view value_type_name(ValueType t);  // "UINT32", "ARRAY", ...

struct Value;
struct Array {
  ValueType elem = ValueType::UINT8;
  std::vector<Value> items;
  bool operator==(const Array& o) const;
};

// One metadata value. `type` says which alternative `data` holds (BOOL is stored as bool).
struct Value {
  ValueType type = ValueType::UINT8;
  std::variant<uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t, float, bool, std::string,
               Array, uint64_t, int64_t, double>
      data;

  static Value u32(uint32_t v) { return {ValueType::UINT32, v}; }
  static Value i32(int32_t v) { return {ValueType::INT32, v}; }
  static Value u64(uint64_t v) { return {ValueType::UINT64, v}; }
  static Value f32(float v) { return {ValueType::FLOAT32, v}; }
  static Value boolean(bool v) { return {ValueType::BOOL, v}; }
  static Value str(std::string v) { return {ValueType::STRING, std::move(v)}; }
  static Value array(ValueType elem, std::vector<Value> items) {
    return {ValueType::ARRAY, Array{elem, std::move(items)}};
  }
  static Value string_array(const std::vector<std::string>& v);

  // Numeric value of an integer/float/bool scalar as int64/double; throws for others.
  int64_t as_int() const;
  double as_double() const;
  const std::string& as_string() const;  // throws unless STRING
  const Array& as_array() const;         // throws unless ARRAY
  bool operator==(const Value&) const = default;
};

inline bool Array::operator==(const Array& o) const { return elem == o.elem && items == o.items; }

struct KeyValue {
  std::string key;
  Value value;
};

struct TensorInfo {
  std::string name;
  GgmlType type = GgmlType::F32;  // as stored: any id (the reader rejects unknown ones)
  uint32_t n_dims = 1;    // as stored, 1..4
  int64_t ne[4] = {1, 1, 1, 1};
  uint64_t offset = 0;    // relative to the data section
  uint64_t n_bytes = 0;   // exact data size (no padding)

  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  int64_t n_rows() const { return ne[1] * ne[2] * ne[3]; }
};

// How a GGUF file is brought into memory.
struct OpenOptions {
  bool mmap = true;  // false: read the whole file into memory at open (llama.cpp's --no-mmap)
};

// A GGUF file opened for reading. Everything is validated at open(): every length, count,
// offset and type; errors throw imq::Error("<path>: offset N: ...").
class File {
 public:
  static File open(const std::string& path);
  static File open(const std::string& path, const OpenOptions& options);
  // A GGUF image already in memory (a converter's output), validated as open() does; `name`
  // stands for the file in messages and path().
  static File from_memory(std::string name, std::vector<uint8_t> bytes);
  ~File();
  File(File&&) noexcept;
  File& operator=(File&&) noexcept;

  const std::string& path() const;
  uint32_t version() const;
  uint64_t alignment() const;
  uint64_t data_offset() const;  // absolute offset of the data section

  const std::vector<KeyValue>& kvs() const;
  const Value* find(std::string_view key) const;
  // Typed accessors: throw imq::Error naming the file and key when missing or of another type.
  const Value& get(std::string_view key) const;
  std::string get_string(std::string_view key) const;
  int64_t get_int(std::string_view key) const;            // any integer type
  std::optional<int64_t> find_int(std::string_view key) const;
  std::optional<double> find_float(std::string_view key) const;  // any numeric type

  const std::vector<TensorInfo>& tensors() const;
  const TensorInfo* find_tensor(std::string_view name) const;
  const TensorInfo& tensor(std::string_view name) const;  // throws when missing
  std::span<const uint8_t> tensor_data(const TensorInfo& t) const;
  std::span<const uint8_t> bytes() const;  // the whole file, mapped or read
  bool mapped() const;                     // false when opened with OpenOptions::mmap = false
  // The tensor's mapped pages leave this process's RSS until touched again (MappedFile).
  void drop_pages(const TensorInfo& t) const;

 private:
  struct Impl;
  explicit File(std::unique_ptr<Impl> impl);
  static File parse(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Builds a GGUF file in memory order and writes it atomically (temp file + rename).
// Tensor data is either owned bytes or a non-owning span that must outlive write().
class Writer {
 public:
  Writer();
  ~Writer();
  // Sets a key; an existing key is removed and the new one appended (as gguf_set_val does).
  void set(std::string key, Value v);
  void remove(std::string_view key);
  const std::vector<KeyValue>& kvs() const { return kvs_; }
  void set_alignment(uint64_t a);  // also writes general.alignment when != 32

  // ne has n_dims entries (1..4); n_dims as given is written (callers pass ggml_n_dims).
  void add_tensor(std::string name, GgmlType type, std::span<const int64_t> ne,
                  std::vector<uint8_t> data);
  void add_tensor_view(std::string name, GgmlType type, std::span<const int64_t> ne,
                       std::span<const uint8_t> data);
  // A tensor whose bytes are produced during write(path, produce): lets a caller stream a
  // large output (e.g. quantize tensor by tensor) without holding it all in memory.
  void add_tensor_deferred(std::string name, GgmlType type, std::span<const int64_t> ne);
  size_t tensor_count() const { return tensors_.size(); }

  // Serialized size of header + KVs + tensor infos (before padding).
  uint64_t header_size() const;
  // Total file size write() would produce.
  uint64_t file_size() const;
  void write(const std::string& path) const;
  // Same; the bytes of deferred tensor i (index among all tensors, called in file order) come
  // from produce(i), whose span must hold exactly that tensor's size and stay valid until the
  // next call.
  using Producer = std::function<std::span<const uint8_t>(size_t index)>;
  void write(const std::string& path, const Producer& produce) const;
  // The bytes write() would put in the file (no deferred tensors), for in-memory models.
  std::vector<uint8_t> to_bytes() const;

 private:
  struct Tensor {
    TensorInfo info;
    std::vector<uint8_t> owned;
    std::span<const uint8_t> view;
    bool deferred = false;
    std::span<const uint8_t> bytes() const { return owned.empty() ? view : std::span<const uint8_t>(owned); }
  };
  std::vector<KeyValue> kvs_;
  std::vector<Tensor> tensors_;
  uint64_t alignment_ = 32;
};

// Number of dims ggml writes for a shape: index of the last dim > 1, plus one (min 1).
uint32_t ggml_n_dims(std::span<const int64_t> ne);

}  // namespace imq::gguf
