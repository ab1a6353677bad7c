// Writing HF folder files in tests: safetensors files, SentencePiece pieces, plain files.
#pragma once
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/fp16.h"

namespace imq::test {

inline void write_file(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

struct StT {
  std::string name, dtype;
  std::vector<int64_t> shape;
  std::string data;
};

inline std::string u64le(uint64_t v) { return std::string(reinterpret_cast<const char*>(&v), 8); }

// A safetensors file: header length, JSON header (offsets consecutive; the first `from` in it
// replaced by `to`), data.
inline std::string safetensors(const std::vector<StT>& ts,
                               const std::string& extra = R"("__metadata__":{"format":"pt"},)",
                               const std::string& from = "", const std::string& to = "") {
  std::string h = "{" + extra, data;
  for (size_t i = 0; i < ts.size(); ++i) {
    std::string shape;
    for (size_t d = 0; d < ts[i].shape.size(); ++d) shape += (d ? "," : "") + std::to_string(ts[i].shape[d]);
    h += (i ? "," : "") + fmt::format(R"("{}":{{"dtype":"{}","shape":[{}],"data_offsets":[{},{}]}})", ts[i].name,
                                      ts[i].dtype, shape, data.size(), data.size() + ts[i].data.size());
    data += ts[i].data;
  }
  h += "}";
  if (!from.empty()) {
    const size_t i = h.find(from);
    if (i == std::string::npos) throw std::runtime_error("test header lacks " + from);
    h.replace(i, from.size(), to);
  }
  return u64le(h.size()) + h + data;
}

// n BF16 values: value(i) rounded to BF16.
inline std::string bf16s(size_t n, const std::function<float(size_t)>& value) {
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    const uint16_t b = f32_to_bf16(value(i));
    s.append(reinterpret_cast<const char*>(&b), 2);
  }
  return s;
}

inline std::string varint(uint64_t v) {
  std::string s;
  do {
    uint8_t c = v & 0x7f;
    v >>= 7;
    if (v) c |= 0x80;
    s += char(c);
  } while (v);
  return s;
}

// One SentencePiece ModelProto `pieces` entry (field 1) with its text, score and type.
inline std::string sp_piece(const std::string& text, float score, int type) {
  std::string m = "\x0a" + varint(text.size()) + text + "\x15" + std::string(reinterpret_cast<const char*>(&score), 4);
  if (type != 1) m += "\x18" + varint(uint64_t(type));
  return "\x0a" + varint(m.size()) + m;
}

}  // namespace imq::test
