// The float "codecs" (block size 1): F32 is a copy, F16 and BF16 round to nearest even
// (spec g.4; ggml_fp32_to_fp16_row / ggml_fp32_to_bf16_row_ref). Importance is ignored.
#include <cstring>

#include "core/fp16.h"
#include "quant/families.h"

namespace imq::quant {
namespace {

// Element i of a 2-byte float array, read and written through memcpy (any alignment).
inline uint16_t load_u16(const void* p, int64_t i) {
  uint16_t v;
  std::memcpy(&v, static_cast<const unsigned char*>(p) + 2 * i, 2);
  return v;
}
inline void store_u16(void* p, int64_t i, uint16_t v) {
  std::memcpy(static_cast<unsigned char*>(p) + 2 * i, &v, 2);
}

void f32_dequantize(const void* src, float* dst, int64_t n) {
  std::memcpy(dst, src, size_t(n) * sizeof(float));
}
size_t f32_quantize(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float*) {
  const size_t bytes = size_t(nrows * n_per_row) * sizeof(float);
  std::memcpy(dst, src, bytes);
  return bytes;
}

void f16_dequantize(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(load_u16(src, i));
}
size_t f16_quantize(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float*) {
  const int64_t n = nrows * n_per_row;
  for (int64_t i = 0; i < n; ++i) store_u16(dst, i, f32_to_f16(src[i]));
  return size_t(n) * 2;
}

void bf16_dequantize(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(load_u16(src, i));
}
size_t bf16_quantize(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float*) {
  const int64_t n = nrows * n_per_row;
  for (int64_t i = 0; i < n; ++i) store_u16(dst, i, f32_to_bf16(src[i]));
  return size_t(n) * 2;
}

}  // namespace

void add_float_codecs(std::vector<Codec>& out) {
  out.push_back({GgmlType::F32, "f32", 1, 4, f32_dequantize, f32_quantize, ActFormat::F32});
  out.push_back({GgmlType::F16, "f16", 1, 2, f16_dequantize, f16_quantize, ActFormat::F16});
  out.push_back({GgmlType::BF16, "bf16", 1, 2, bf16_dequantize, bf16_quantize, ActFormat::BF16});
}

}  // namespace imq::quant
