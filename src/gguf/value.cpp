#include <string>

#include "imq/gguf.h"

namespace imq::gguf {

std::string_view value_type_name(ValueType t) {
  switch (t) {
    case ValueType::UINT8: return "UINT8";
    case ValueType::INT8: return "INT8";
    case ValueType::UINT16: return "UINT16";
    case ValueType::INT16: return "INT16";
    case ValueType::UINT32: return "UINT32";
    case ValueType::INT32: return "INT32";
    case ValueType::FLOAT32: return "FLOAT32";
    case ValueType::BOOL: return "BOOL";
    case ValueType::STRING: return "STRING";
    case ValueType::ARRAY: return "ARRAY";
    case ValueType::UINT64: return "UINT64";
    case ValueType::INT64: return "INT64";
    case ValueType::FLOAT64: return "FLOAT64";
  }
  return "?";
}

Value Value::string_array(const std::vector<std::string>& v) {
  std::vector<Value> items;
  items.reserve(v.size());
  for (const auto& s : v) items.push_back(str(s));
  return array(ValueType::STRING, std::move(items));
}

int64_t Value::as_int() const {
  return std::visit(
      [&](const auto& v) -> int64_t {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, Array>) {
          throw_error("expected an integer, found {}", value_type_name(type));
        } else if constexpr (std::is_same_v<T, uint64_t>) {
          if (v > uint64_t(INT64_MAX)) throw_error("integer {} out of range", v);
          return int64_t(v);
        } else if constexpr (std::is_floating_point_v<T>) {
          // Truncated as a cast would, but a cast of NaN or of a value outside int64 is undefined.
          if (!(double(v) >= -0x1p63 && double(v) < 0x1p63))
            throw_error("{} {} is not an integer in the int64 range", value_type_name(type), v);
          return int64_t(v);
        } else {
          return int64_t(v);
        }
      },
      data);
}

double Value::as_double() const {
  return std::visit(
      [&](const auto& v) -> double {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, Array>) {
          throw_error("expected a number, found {}", value_type_name(type));
        } else {
          return double(v);
        }
      },
      data);
}

const std::string& Value::as_string() const {
  if (const auto* s = std::get_if<std::string>(&data)) return *s;
  throw_error("expected a STRING, found {}", value_type_name(type));
}

const Array& Value::as_array() const {
  if (const auto* a = std::get_if<Array>(&data)) return *a;
  throw_error("expected an ARRAY, found {}", value_type_name(type));
}

uint32_t ggml_n_dims(std::span<const int64_t> ne) {
  uint32_t n = 1;
  for (size_t i = 0; i < ne.size(); ++i)
    if (ne[i] != 1) n = uint32_t(i + 1);
  return n;
}

}  // namespace imq::gguf
