// Helpers of the codec tests: reading F32 tensors and imatrix importance from GGUF files, and a
// decoder for every block layout written straight from the spec's bit placement (g.3), kept
// apart from the codecs so the two check each other.
#pragma once
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "core/fp16.h"
#include "imq/ggml_types.h"
#include "imq/gguf.h"

namespace imq::test {

inline std::vector<float> read_f32_tensor(const gguf::File& f, const gguf::TensorInfo& t) {
  if (t.type != GgmlType::F32) throw Error(t.name + ": expected an F32 tensor");
  auto bytes = f.tensor_data(t);
  std::vector<float> v(bytes.size() / sizeof(float));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
  return v;
}

// llama-quantize's importance for weight `name` (spec e.1): in_sum2 / count per slot, 1.0 for a
// slot with count 0; nullopt when the imatrix has no entry for that weight.
inline std::optional<std::vector<float>> imatrix_importance(const gguf::File& imatrix,
                                                            const std::string& name) {
  const auto* sums = imatrix.find_tensor(name + ".in_sum2");
  const auto* counts = imatrix.find_tensor(name + ".counts");
  if (!sums || !counts) return std::nullopt;
  std::vector<float> s = read_f32_tensor(imatrix, *sums), c = read_f32_tensor(imatrix, *counts);
  const size_t per_slot = s.size() / c.size();
  for (size_t k = 0; k < c.size(); ++k) {
    const int64_t count = std::llround(c[k]);
    for (size_t j = 0; j < per_slot; ++j) {
      float& v = s[k * per_slot + j];
      v = count == 0 ? 1.0f : v / float(count);
    }
  }
  return s;
}

inline uint16_t le16(const uint8_t* p) { return uint16_t(p[0] | p[1] << 8); }
inline uint32_t le32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

inline constexpr int8_t kIq4Values[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                          1,    13,   25,  38,  53,  69,  89,  113};

// Element e of one block of `type`, decoded bit by bit as spec g.3 describes it.
inline float spec_decode(GgmlType type, const uint8_t* b, int e) {
  auto nibble = [](const uint8_t* qs, int e) { return e < 16 ? qs[e] & 15 : qs[e - 16] >> 4; };
  switch (type) {
    case GgmlType::Q4_0:
      return float(nibble(b + 2, e) - 8) * f16_to_f32(le16(b));
    case GgmlType::Q4_1:
      return float(nibble(b + 4, e)) * f16_to_f32(le16(b)) + f16_to_f32(le16(b + 2));
    case GgmlType::Q5_0: {
      const int q = nibble(b + 6, e) | int((le32(b + 2) >> e) & 1) << 4;
      return float(q - 16) * f16_to_f32(le16(b));
    }
    case GgmlType::Q5_1: {
      const int q = nibble(b + 8, e) | int((le32(b + 4) >> e) & 1) << 4;
      return float(q) * f16_to_f32(le16(b)) + f16_to_f32(le16(b + 2));
    }
    case GgmlType::Q8_0:
      return float(int8_t(b[2 + e])) * f16_to_f32(le16(b));
    case GgmlType::IQ4_NL:
      return f16_to_f32(le16(b)) * float(kIq4Values[nibble(b + 2, e)]);
    case GgmlType::IQ4_XS: {
      const int ib = e / 32;
      const int low = (b[4 + ib / 2] >> (4 * (ib % 2))) & 15;
      const int high = (le16(b + 2) >> (2 * ib)) & 3;
      const int ls = low | high << 4;
      const float dl = f16_to_f32(le16(b)) * float(ls - 32);
      return dl * float(kIq4Values[nibble(b + 8 + 16 * ib, e % 32)]);
    }
    default:
      throw Error("spec_decode: unsupported type");
  }
}

// Decodes n elements (whole blocks of `type`) one at a time with decode(type, block, e); the
// legacy and the K-quant spec decoders share it.
inline std::vector<float> decode_elements(GgmlType type, const uint8_t* data, int64_t n,
                                          float (*decode)(GgmlType, const uint8_t*, int)) {
  const auto info = *ggml_type_info(type);
  std::vector<float> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    out[size_t(i)] = decode(type, data + (i / info.block_size) * info.type_size, int(i % info.block_size));
  return out;
}

// Decodes n elements (whole blocks) with spec_decode.
inline std::vector<float> spec_decode_all(GgmlType type, const uint8_t* data, int64_t n) {
  return decode_elements(type, data, n, spec_decode);
}

}  // namespace imq::test
