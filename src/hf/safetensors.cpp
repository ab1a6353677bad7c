// Safetensors reader: strict header validation, then non-owning views into the mapping.
#include "hf/safetensors.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "core/checked.h"
#include "hf/json_error.h"
#include "imq/error.h"

namespace imq::hf {

namespace {

using nlohmann::json;

// safetensors' own limit on the header (100 MB): a larger length is a corrupt or hostile file.
constexpr uint64_t kMaxHeader = 100'000'000;

bool parse_dtype(const std::string& s, Dtype& d) {
  if (s == "F32") d = Dtype::F32;
  else if (s == "F16") d = Dtype::F16;
  else if (s == "BF16") d = Dtype::BF16;
  else return false;
  return true;
}

// Parses the header JSON, rejecting a key that appears twice in the top-level object (a
// plain parse would keep the last one silently).
json parse_header(std::string_view text, const std::string& path) {
  std::set<std::string> seen;
  std::string dup;
  auto cb = [&](int depth, json::parse_event_t ev, json& parsed) {
    if (ev == json::parse_event_t::key && depth == 1 && !seen.insert(parsed.get<std::string>()).second &&
        dup.empty())
      dup = parsed.get<std::string>();
    return true;
  };
  json h;
  try {
    h = json::parse(text.begin(), text.end(), cb);
  } catch (const json::exception& e) {
    throw_error("{}: header is not valid JSON ({})", path, json_error(e));
  }
  if (!dup.empty()) throw_error("{}: header names {} twice", path, dup);
  if (!h.is_object()) throw_error("{}: header is not a JSON object", path);
  return h;
}

uint64_t get_u64(const json& j, const std::string& path, const std::string& name, const char* what) {
  if (!j.is_number_unsigned())
    throw_error("{}: tensor {}: {} must hold non-negative integers, found {}", path, name, what, j.dump());
  return j.get<uint64_t>();
}

}  // namespace

size_t dtype_size(Dtype d) { return d == Dtype::F32 ? 4 : 2; }
const char* dtype_name(Dtype d) { return d == Dtype::F32 ? "F32" : d == Dtype::F16 ? "F16" : "BF16"; }

int64_t StTensor::n_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

SafetensorsFile SafetensorsFile::open(const std::string& path) { return parse(MappedFile(path)); }

SafetensorsFile SafetensorsFile::parse(MappedFile map) {
  SafetensorsFile f(std::move(map));
  const std::string& path = f.map_.path();
  const auto bytes = f.map_.bytes();
  if (bytes.size() < 8)
    throw_error("{}: file too short for a safetensors header ({} bytes, need at least 8)", path, bytes.size());
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[size_t(i)];
  if (n > kMaxHeader || n > bytes.size() - 8)
    throw_error("{}: offset 0: header length {} is past the end of the file ({} bytes) or over the "
                "{} byte limit", path, n, bytes.size(), kMaxHeader);
  const std::string_view text(reinterpret_cast<const char*>(bytes.data() + 8), size_t(n));
  if (text.empty() || text.front() != '{')
    throw_error("{}: offset 8: header does not start with '{{'", path);
  const json h = parse_header(text, path);
  f.data_start_ = 8 + n;
  const uint64_t data_size = bytes.size() - f.data_start_;

  for (const auto& [name, v] : h.items()) {
    if (name == "__metadata__") {
      if (!v.is_object()) throw_error("{}: __metadata__ is not a JSON object", path);
      for (const auto& [k, mv] : v.items()) {
        if (!mv.is_string()) throw_error("{}: __metadata__ key {} is not a string: {}", path, k, mv.dump());
        f.metadata_[k] = mv.get<std::string>();
      }
      continue;
    }
    if (name.empty()) throw_error("{}: header has a tensor with an empty name", path);
    if (!v.is_object()) throw_error("{}: tensor {}: entry is not a JSON object", path, name);
    for (const char* key : {"dtype", "shape", "data_offsets"})
      if (!v.contains(key)) throw_error("{}: tensor {}: missing \"{}\"", path, name, key);
    StTensor t;
    t.name = name;
    if (!v["dtype"].is_string()) throw_error("{}: tensor {}: dtype is not a string", path, name);
    const std::string dt = v["dtype"].get<std::string>();
    if (!parse_dtype(dt, t.dtype))
      throw_error("{}: tensor {}: dtype {} is not supported (expected BF16, F16 or F32)", path, name, dt);
    const json& shape = v["shape"];
    if (!shape.is_array() || shape.size() > 8)
      throw_error("{}: tensor {}: shape must be an array of at most 8 dimensions, found {}", path, name,
                  shape.dump());
    // A zero dimension makes the tensor empty, but must not hide absurd other dimensions
    // (n_elements() multiplies them all, the converter copies them as int64): the non-zero
    // ones are bounded together.
    uint64_t extent = 1;  // product of the non-zero dimensions
    bool empty = false;
    for (const auto& d : shape) {
      const uint64_t x = get_u64(d, path, name, "shape");
      if (x == 0) empty = true;
      else extent = checked_mul(extent, x, fmt::format("{}: tensor {} element count", path, name));
      t.shape.push_back(int64_t(x));
    }
    if (extent > uint64_t(INT64_MAX) / 8)
      throw_error("{}: tensor {}: {} elements{} is absurd", path, name, extent,
                  empty ? " (not counting its zero dimensions)" : "");
    const uint64_t n_el = empty ? 0 : extent;
    const json& off = v["data_offsets"];
    if (!off.is_array() || off.size() != 2)
      throw_error("{}: tensor {}: data_offsets must be [begin, end], found {}", path, name, off.dump());
    t.begin = get_u64(off[0], path, name, "data_offsets");
    t.end = get_u64(off[1], path, name, "data_offsets");
    if (t.end < t.begin)
      throw_error("{}: tensor {}: data_offsets [{}, {}] end before they begin", path, name, t.begin, t.end);
    const uint64_t want = n_el * dtype_size(t.dtype);
    if (t.end - t.begin != want)
      throw_error("{}: tensor {}: data_offsets [{}, {}] hold {} bytes, but {} of shape {} needs {}", path,
                  name, t.begin, t.end, t.end - t.begin, dt, shape.dump(), want);
    if (t.end > data_size)
      throw_error("{}: tensor {}: data_offsets [{}, {}] run past the end of the data section ({} bytes at "
                  "offset {})", path, name, t.begin, t.end, data_size, f.data_start_);
    f.tensors_.push_back(std::move(t));
  }

  // Sorted by position, the ranges must tile the data section exactly.
  std::vector<const StTensor*> by_pos;
  for (const auto& t : f.tensors_) by_pos.push_back(&t);
  std::sort(by_pos.begin(), by_pos.end(), [](auto* a, auto* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t pos = 0;
  const StTensor* prev = nullptr;
  for (const StTensor* t : by_pos) {
    if (t->begin < pos)
      throw_error("{}: tensors {} and {} overlap (bytes [{}, {}] and [{}, {}])", path, prev->name, t->name,
                  prev->begin, prev->end, t->begin, t->end);
    if (t->begin > pos)
      throw_error("{}: bytes [{}, {}] of the data section belong to no tensor (hole before {})", path, pos,
                  t->begin, t->name);
    pos = t->end;
    prev = t;
  }
  if (pos != data_size)
    throw_error("{}: data section is {} bytes but its tensors end at {} (trailing bytes)", path, data_size, pos);
  for (size_t i = 0; i < f.tensors_.size(); ++i) f.index_.emplace(f.tensors_[i].name, i);
  return f;
}

const StTensor* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

std::span<const uint8_t> SafetensorsFile::data(const StTensor& t) const {
  return map_.bytes().subspan(size_t(data_start_ + t.begin), size_t(t.end - t.begin));
}

Checkpoint Checkpoint::open_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  Checkpoint c;
  const fs::path index_path = fs::path(dir) / "model.safetensors.index.json";
  const fs::path single = fs::path(dir) / "model.safetensors";
  if (fs::exists(index_path)) {
    const std::string ip = index_path.string();
    json idx;
    {
      MappedFile m(ip);
      const auto b = m.bytes();
      try {
        idx = json::parse(b.begin(), b.end());
      } catch (const json::exception& e) {
        throw_error("{}: not valid JSON ({})", ip, json_error(e));
      }
    }
    if (!idx.is_object() || !idx.contains("weight_map") || !idx["weight_map"].is_object())
      throw_error("{}: missing \"weight_map\" object", ip);
    std::map<std::string, std::string> weight_map;  // tensor -> shard file
    std::set<std::string> files;
    for (const auto& [name, file] : idx["weight_map"].items()) {
      if (!file.is_string()) throw_error("{}: weight_map entry {} is not a file name", ip, name);
      const std::string fn = file.get<std::string>();
      if (fn.empty() || fn.find('/') != std::string::npos || fn == "." || fn == "..")
        throw_error("{}: weight_map entry {}: shard name \"{}\" is not a file in the folder", ip, name, fn);
      weight_map[name] = fn;
      files.insert(fn);
    }
    if (files.empty()) throw_error("{}: weight_map is empty", ip);
    for (const std::string& fn : files) c.shards.push_back(SafetensorsFile::open((fs::path(dir) / fn).string()));
    size_t i = 0;
    for (const std::string& fn : files) {
      const SafetensorsFile& s = c.shards[i++];
      for (const auto& t : s.tensors()) {
        auto it = weight_map.find(t.name);
        if (it == weight_map.end())
          throw_error("{}: tensor {} is not listed in {}", s.path(), t.name, ip);
        if (it->second != fn)
          throw_error("{}: tensor {} is listed in {} as being in {}", s.path(), t.name, ip, it->second);
      }
    }
    for (const auto& [name, fn] : weight_map) {
      const size_t k = size_t(std::distance(files.begin(), files.find(fn)));
      if (!c.shards[k].find(name))
        throw_error("{}: tensor {} is listed in {} but missing from the shard", c.shards[k].path(), name, ip);
    }
  } else if (fs::exists(single)) {
    c.shards.push_back(SafetensorsFile::open(single.string()));
  } else {
    throw_error("{}: no model.safetensors or model.safetensors.index.json", dir);
  }
  for (size_t s = 0; s < c.shards.size(); ++s) {
    std::vector<const StTensor*> ts;
    for (const auto& t : c.shards[s].tensors()) ts.push_back(&t);
    std::sort(ts.begin(), ts.end(), [](auto* a, auto* b) { return a->name < b->name; });
    for (const StTensor* t : ts) c.ordered.push_back({s, t});
  }
  return c;
}

}  // namespace imq::hf
