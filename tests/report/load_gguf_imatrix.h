// A minimal GGUF imatrix reader for the report tests ("<name>.in_sum2" / "<name>.counts" f32
// tensor pairs, imatrix.* keys), so these tests do not depend on the imatrix file module.
#pragma once
#include <cstring>
#include <string>

#include "imq/gguf.h"
#include "imq/imatrix.h"

namespace imq::test {

inline std::vector<float> f32_tensor(const gguf::File& f, const gguf::TensorInfo& t) {
  auto bytes = f.tensor_data(t);
  std::vector<float> v(bytes.size() / sizeof(float));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
  return v;
}

inline imatrix::Imatrix load_gguf_imatrix(const std::string& path) {
  auto f = gguf::File::open(path);
  imatrix::Imatrix m;
  if (const auto* v = f.find("imatrix.datasets"))
    for (const auto& item : v->as_array().items) m.datasets.push_back(item.as_string());
  m.chunk_count = static_cast<uint32_t>(f.find_int("imatrix.chunk_count").value_or(0));
  m.chunk_size = static_cast<uint32_t>(f.find_int("imatrix.chunk_size").value_or(0));
  const std::string suffix = ".in_sum2";
  for (const auto& t : f.tensors()) {
    if (!t.name.ends_with(suffix)) continue;
    std::string name = t.name.substr(0, t.name.size() - suffix.size());
    auto& e = m.entries[name];
    e.sums = f32_tensor(f, t);
    e.counts = f32_tensor(f, f.tensor(name + ".counts"));
  }
  return m;
}

}  // namespace imq::test
