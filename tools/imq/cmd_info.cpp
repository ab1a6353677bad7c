// imq info FILE.gguf [--json | --tsv]: header, metadata and tensors of a GGUF file.
// --tsv prints exactly the listing of ../shared/reference/tools/gguf_info_tsv.py.
#include <charconv>
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "imq/hf.h"
#include "imq/gguf.h"

namespace imq::cli {

namespace {

using gguf::Value;
using gguf::ValueType;

// Python's repr() of a float: shortest round-trip digits; scientific outside 1e-4 <= |x| < 1e16.
std::string py_float(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  if (v == 0) return std::signbit(v) ? "-0.0" : "0.0";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string s(buf, r.ptr);
  const size_t e = s.find('e');
  std::string mant = s.substr(0, e);
  const int exp = std::stoi(s.substr(e + 1));
  std::string sign;
  if (mant[0] == '-') {
    sign = "-";
    mant.erase(0, 1);
  }
  std::string digits;
  for (char c : mant)
    if (c != '.') digits += c;
  if (exp < -4 || exp >= 16) {
    std::string m = digits.substr(0, 1);
    if (digits.size() > 1) m += "." + digits.substr(1);
    return fmt::format("{}{}e{}{:02d}", sign, m, exp < 0 ? '-' : '+', std::abs(exp));
  }
  std::string out;
  if (exp < 0) {
    out = "0." + std::string(size_t(-exp - 1), '0') + digits;
  } else if (size_t(exp) + 1 >= digits.size()) {
    out = digits + std::string(size_t(exp) + 1 - digits.size(), '0') + ".0";
  } else {
    out = digits.substr(0, size_t(exp) + 1) + "." + digits.substr(size_t(exp) + 1);
  }
  return sign + out;
}

// json.dumps(s, ensure_ascii=False)
std::string py_json_string(const std::string& s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': o += "\\\""; break;
      case '\\': o += "\\\\"; break;
      case '\n': o += "\\n"; break;
      case '\r': o += "\\r"; break;
      case '\t': o += "\\t"; break;
      case '\b': o += "\\b"; break;
      case '\f': o += "\\f"; break;
      default:
        if (c < 0x20) o += fmt::format("\\u{:04x}", c);
        else o += char(c);
    }
  }
  return o + "\"";
}

std::string scalar_text(const Value& v) {
  switch (v.type) {
    case ValueType::STRING: return py_json_string(v.as_string());
    case ValueType::BOOL: return std::get<bool>(v.data) ? "true" : "false";
    case ValueType::FLOAT32: return py_float(std::get<float>(v.data));
    case ValueType::FLOAT64: return py_float(std::get<double>(v.data));
    case ValueType::UINT64: return std::to_string(std::get<uint64_t>(v.data));
    case ValueType::ARRAY: {
      const auto& a = v.as_array();
      std::string s = "[";
      for (size_t i = 0; i < a.items.size(); ++i) s += (i ? ", " : "") + scalar_text(a.items[i]);
      return s + "]";
    }
    default: return std::to_string(v.as_int());
  }
}

std::string array_head(const gguf::Array& a, size_t n) {
  std::string s = "[";
  for (size_t i = 0; i < a.items.size() && i < n; ++i) s += (i ? ", " : "") + scalar_text(a.items[i]);
  return s + "]";
}

std::string shape_text(const gguf::TensorInfo& t, const char* sep) {
  std::string s;
  for (uint32_t d = 0; d < t.n_dims; ++d) s += (d ? sep : "") + std::to_string(t.ne[d]);
  return s;
}

void print_tsv(const gguf::File& f) {
  std::string out = fmt::format("header\tversion\t{}\tn_tensors\t{}\tn_kv\t{}\talignment\t{}\tdata_offset\t{}\n",
                                f.version(), f.tensors().size(), f.kvs().size(), f.alignment(), f.data_offset());
  for (const auto& kv : f.kvs()) {
    if (kv.value.type == ValueType::ARRAY) {
      const auto& a = kv.value.as_array();
      out += fmt::format("kv\t{}\tARRAY[{}]\tlen={}\t{}\n", kv.key, gguf::value_type_name(a.elem), a.items.size(),
                         array_head(a, 8));
    } else {
      out += fmt::format("kv\t{}\t{}\t{}\n", kv.key, gguf::value_type_name(kv.value.type), scalar_text(kv.value));
    }
  }
  for (const auto& t : f.tensors()) {
    auto info = ggml_type_info(t.type);
    out += fmt::format("tensor\t{}\t{}\t{}\t{}\t{}\t{}\n", t.name, info->name, uint32_t(t.type), shape_text(t, ","), t.offset,
                       t.n_bytes);
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
}

nlohmann::json to_json(const Value& v) {
  switch (v.type) {
    case ValueType::STRING: return v.as_string();
    case ValueType::BOOL: return std::get<bool>(v.data);
    case ValueType::FLOAT32: case ValueType::FLOAT64: return v.as_double();
    case ValueType::UINT64: return std::get<uint64_t>(v.data);
    case ValueType::ARRAY: {
      nlohmann::json a = nlohmann::json::array();
      for (const auto& it : v.as_array().items) a.push_back(to_json(it));
      return a;
    }
    default: return v.as_int();
  }
}

void print_json(const gguf::File& f) {
  nlohmann::json j;
  j["path"] = f.path();
  j["version"] = f.version();
  j["alignment"] = f.alignment();
  j["data_offset"] = f.data_offset();
  nlohmann::json md = nlohmann::json::array();
  for (const auto& kv : f.kvs()) {
    nlohmann::json e{{"key", kv.key}, {"type", gguf::value_type_name(kv.value.type)}, {"value", to_json(kv.value)}};
    if (kv.value.type == ValueType::ARRAY) e["element_type"] = gguf::value_type_name(kv.value.as_array().elem);
    md.push_back(std::move(e));
  }
  j["metadata"] = std::move(md);
  nlohmann::json ts = nlohmann::json::array();
  for (const auto& t : f.tensors()) {
    nlohmann::json shape = nlohmann::json::array();
    for (uint32_t d = 0; d < t.n_dims; ++d) shape.push_back(t.ne[d]);
    ts.push_back({{"name", t.name}, {"type", ggml_type_display_name(t.type)}, {"type_id", t.type},
                  {"shape", shape}, {"offset", t.offset}, {"n_bytes", t.n_bytes}});
  }
  j["tensors"] = std::move(ts);
  std::string s = j.dump(1) + "\n";
  std::fwrite(s.data(), 1, s.size(), stdout);
}

void print_text(const gguf::File& f) {
  std::string out = fmt::format("* {}: GGUF v{}, {} metadata keys, {} tensors, alignment {}, data at {}\n\n", f.path(),
                                f.version(), f.kvs().size(), f.tensors().size(), f.alignment(), f.data_offset());
  out += "* Metadata:\n";
  size_t i = 0;
  for (const auto& kv : f.kvs()) {
    ++i;
    if (kv.value.type == ValueType::ARRAY) {
      const auto& a = kv.value.as_array();
      std::string head = array_head(a, 8);
      if (a.items.size() > 8) head.insert(head.size() - 1, ", ...");
      out += fmt::format("  {:4}: {:<14} {:<48} = {}\n", i, fmt::format("[{}]x{}", gguf::value_type_name(a.elem),
                                                                         a.items.size()), kv.key, head);
    } else {
      std::string val = scalar_text(kv.value);
      if (val.size() > 120) val = val.substr(0, 117) + "...";
      out += fmt::format("  {:4}: {:<14} {:<48} = {}\n", i, gguf::value_type_name(kv.value.type), kv.key, val);
    }
  }
  out += fmt::format("\n* Tensors ({}):\n", f.tensors().size());
  out += fmt::format("  {:>4}  {:<40} {:<8} {:<22} {:>12} {:>12}\n", "#", "name", "type", "shape", "offset", "bytes");
  i = 0;
  uint64_t total = 0;
  for (const auto& t : f.tensors()) {
    out += fmt::format("  {:4}  {:<40} {:<8} {:<22} {:12} {:12}\n", ++i, t.name, ggml_type_display_name(t.type),
                       shape_text(t, " x "), t.offset, t.n_bytes);
    total += t.n_bytes;
  }
  out += fmt::format("\n  total tensor data: {} bytes ({:.2f} MiB)\n", total, double(total) / (1 << 20));
  std::fwrite(out.data(), 1, out.size(), stdout);
}

}  // namespace

int cmd_info(int argc, char** argv) {
  CLI::App app{"Print a GGUF file's header, every metadata key and every tensor (like gguf-dump)", "imq info"};
  std::string path;
  bool json = false, tsv = false;
  app.add_option("file", path, "GGUF file or HF model folder")->required();
  app.add_flag("--json", json, "machine-readable JSON (every array element included)");
  app.add_flag("--tsv", tsv, "the tab-separated listing of shared/reference/tools/gguf_info_tsv.py");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  auto f = hf::open_model_file(path);  // an HF folder: the GGUF it converts to
  if (json) print_json(f);
  else if (tsv) print_tsv(f);
  else print_text(f);
  return 0;
}

}  // namespace imq::cli
