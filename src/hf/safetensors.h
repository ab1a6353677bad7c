// Safetensors files (Hugging Face's weight format), memory-mapped and validated at open.
//
//   u64 N (little-endian) | N bytes of JSON header | data section
//   header: { "__metadata__": {str: str}?, "<name>": {"dtype": "BF16", "shape": [d0, ...],
//             "data_offsets": [begin, end]}, ... }   offsets relative to the data section
//
// Every tensor's byte range must match its dtype and shape, lie inside the data section and
// not overlap another; together they cover the data section without holes (as the
// safetensors library requires). Only the float types a llama checkpoint holds are accepted.
#pragma once
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "core/mapped_file.h"

namespace imq::hf {

enum class Dtype : uint8_t { F32, F16, BF16 };
size_t dtype_size(Dtype d);
const char* dtype_name(Dtype d);

struct StTensor {
  std::string name;
  Dtype dtype = Dtype::F32;
  std::vector<int64_t> shape;  // as in the header (outermost first, PyTorch order)
  uint64_t begin = 0, end = 0;  // byte range in the data section

  int64_t n_elements() const;
};

class SafetensorsFile {
 public:
  // Throws imq::Error "<path>: ..." on any inconsistency.
  static SafetensorsFile open(const std::string& path);
  // The same checks on bytes already in memory (tests, fuzzing).
  static SafetensorsFile parse(MappedFile map);

  const std::string& path() const { return map_.path(); }
  const std::vector<StTensor>& tensors() const { return tensors_; }  // sorted by name
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const StTensor* find(const std::string& name) const;
  std::span<const uint8_t> data(const StTensor& t) const;

 private:
  explicit SafetensorsFile(MappedFile map) : map_(std::move(map)) {}
  MappedFile map_;
  uint64_t data_start_ = 0;
  std::vector<StTensor> tensors_;
  std::map<std::string, std::string> metadata_;
  std::map<std::string, size_t, std::less<>> index_;
};

// A model's weights: one model.safetensors, or the shards named by
// model.safetensors.index.json (every shard's tensors must be the index's, and vice versa).
struct Checkpoint {
  std::vector<SafetensorsFile> shards;  // sorted by file name (the converter's part order)
  struct Ref {
    size_t shard;
    const StTensor* tensor;
  };
  // Tensors in the order llama.cpp's converter meets them: shards by file name, names within
  // a shard sorted byte-wise (safetensors' keys()).
  std::vector<Ref> ordered;

  static Checkpoint open_dir(const std::string& dir);
  std::span<const uint8_t> data(const Ref& r) const { return shards[r.shard].data(*r.tensor); }
  const std::string& path(const Ref& r) const { return shards[r.shard].path(); }
};

}  // namespace imq::hf
