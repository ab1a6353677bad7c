// Helpers of the K-quant tests: a decoder of every K-quant block written straight from the
// spec's bit placement (g.3), one element at a time, kept apart from the codecs so that the
// two check each other; and quantizing a whole (2-D or 3-D expert) tensor the way
// llama-quantize does. F32 tensors and imatrix importance are read with the legacy codec
// tests' helpers (read_f32_tensor, imatrix_importance).
#pragma once
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/fp16.h"
#include "imq/quant.h"
#include "quant_legacy/codec_test_util.h"

namespace imq::test {

// Element e (0..255) of one K-quant block, decoded bit by bit as spec g.3 describes it; the
// products are evaluated in ggml's order (d * scale first, then * q).
inline float spec_decode_k(GgmlType type, const uint8_t* b, int e) {
  const int s16 = e / 16, s32 = e / 32;
  // 2-bit code of Q2_K / low bits of Q3_K: bit pair k of qs[32h + l] is element 128h + 32k + l.
  auto low2 = [](const uint8_t* qs, int e) {
    return (qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
  };
  switch (type) {
    case GgmlType::Q2_K: {
      const uint8_t sc = b[s16];
      const float d = f16_to_f32(le16(b + 80)), dmin = f16_to_f32(le16(b + 82));
      return d * float(sc & 15) * float(low2(b + 16, e)) - dmin * float(sc >> 4);
    }
    case GgmlType::Q3_K: {
      const uint8_t* scales = b + 96;
      const int lo = s16 < 8 ? scales[s16] & 15 : scales[s16 - 8] >> 4;
      const int hi = (scales[8 + s16 % 4] >> (2 * (s16 / 4))) & 3;
      const int hbit = (b[e % 32] >> (e / 32)) & 1;
      const int q = low2(b + 32, e) + 4 * hbit - 4;
      return f16_to_f32(le16(b + 108)) * float((lo | hi << 4) - 32) * float(q);
    }
    case GgmlType::Q4_K:
    case GgmlType::Q5_K: {
      const uint8_t* s = b + 4;
      const int j = s32;
      const int sc = j < 4 ? s[j] & 63 : (s[j + 4] & 15) | (s[j - 4] >> 6) << 4;
      const int m = j < 4 ? s[j + 4] & 63 : (s[j + 4] >> 4) | (s[j] >> 6) << 4;
      const int c = e / 64, l = e % 32;
      const bool upper = (e % 64) >= 32;
      const uint8_t* qs = type == GgmlType::Q4_K ? b + 16 : b + 48;
      int q = upper ? qs[32 * c + l] >> 4 : qs[32 * c + l] & 15;
      if (type == GgmlType::Q5_K) q |= ((b[16 + l] >> (2 * c + (upper ? 1 : 0))) & 1) << 4;
      return f16_to_f32(le16(b)) * float(sc) * float(q) - f16_to_f32(le16(b + 2)) * float(m);
    }
    case GgmlType::Q6_K: {
      const int h = e / 128, r = e % 128, l = r % 32, part = r / 32;  // part 0..3
      const uint8_t ql = b[64 * h + l + (part % 2) * 32];
      const int low = part < 2 ? ql & 15 : ql >> 4;
      const int high = (b[128 + 32 * h + l] >> (2 * part)) & 3;
      return f16_to_f32(le16(b + 208)) * float(int8_t(b[192 + s16])) * float((low | high << 4) - 32);
    }
    case GgmlType::Q8_K: {
      float d;
      std::memcpy(&d, b, 4);
      return d * float(int8_t(b[4 + e]));
    }
    default:
      throw Error("spec_decode_k: not a K-quant type");
  }
}

// Decodes n elements (whole super-blocks) with spec_decode_k.
inline std::vector<float> spec_decode_k_all(GgmlType type, const uint8_t* data, int64_t n) {
  return decode_elements(type, data, n, spec_decode_k);
}

// Quantizes tensor `t` (F32 in `model`) to `codec` as llama-quantize does: every row of a
// matrix uses the same importance vector; expert e of a 3-D tensor uses the slice
// importance[e*ne0 .. e*ne0 + ne0 - 1]. importance may be null.
inline std::vector<uint8_t> quantize_tensor(const gguf::File& model, const gguf::TensorInfo& t,
                                            const quant::Codec& codec, const float* importance) {
  const std::vector<float> x = read_f32_tensor(model, t);
  const int64_t ne0 = t.ne[0], rows_per_matrix = t.ne[1];
  const int64_t n_matrix = t.ne[2] * t.ne[3];
  const size_t matrix_bytes = quant::row_size(codec, ne0) * size_t(rows_per_matrix);
  std::vector<uint8_t> out(matrix_bytes * size_t(n_matrix));
  for (int64_t e = 0; e < n_matrix; ++e) {
    const size_t written =
        codec.quantize(x.data() + e * ne0 * rows_per_matrix, out.data() + size_t(e) * matrix_bytes,
                       rows_per_matrix, ne0, importance ? importance + e * ne0 : nullptr);
    if (written != matrix_bytes) throw Error(t.name + ": quantize wrote an unexpected size");
  }
  return out;
}

}  // namespace imq::test
