// Q3_HIFI (imq's own type, id 0x494d5100): a Q3_K block of 256 weights plus the 8 weights of
// the block that matter most, stored exactly as f16 (docs/FORMATS.md). 134 bytes, 4.1875 bpw.
//
//   offset 0                                 110          118                       134
//          +---------------------------------+------------+-------------------------+
//          | Q3_K block of the 256 weights   | idx[8] u8  | val[8] f16              |
//          | with the outliers zeroed:       | outlier    | outlier values, in the  |
//          |  0 hmask[32]   32 qs[64]        | positions, | order of idx            |
//          |  96 scales[12] 108 d f16        | ascending  |                         |
//          +---------------------------------+------------+-------------------------+
//
//   y[e] = Q3_K(e)  for e not in idx;   y[idx[k]] = f16_to_f32(val[k])
//   dot(row, a) = sum_{e not in idx} Q3_K(e) a[e] + sum_k val[k] a[idx[k]]
//
// A reader accepts any idx bytes (repeated positions: the later slot wins); the writer always
// stores 8 distinct positions in ascending order. Which 8 weights become outliers, and how the
// rest is fitted, is q3_hifi_search.cpp's job.
#include <cstring>

#include "core/fp16.h"
#include "imq/error.h"
#include "quant/block_io.h"
#include "quant/families.h"
#include "quant/q3_hifi.h"

namespace imq::quant {

namespace q3_hifi {

namespace q3k {

namespace {
const Codec& codec_q3_k() {
  static const Codec& c = codec(GgmlType::Q3_K);
  return c;
}
}  // namespace

void quantize(const float* x, const float* importance, uint8_t* dst) {
  codec_q3_k().quantize(x, dst, 1, kBlockSize, importance);
}

void dequantize(const uint8_t* src, float* y) { codec_q3_k().dequantize(src, y, kBlockSize); }

float super_scale(const uint8_t* src) { return f16_to_f32(uint16_t(src[108] | src[109] << 8)); }

void subblock_scales(const uint8_t* src, float ds[16]) {
  const float d = super_scale(src);
  const uint8_t* sc = src + 96;
  for (int j = 0; j < 16; ++j) {
    const int low = j < 8 ? sc[j] & 15 : sc[j - 8] >> 4;
    const int high = (sc[8 + j % 4] >> (2 * (j / 4))) & 3;
    ds[j] = d * float((low | high << 4) - 32);
  }
}

}  // namespace q3k

void dequantize_block(const Block& b, float* y) {
  q3k::dequantize(b.q3_k, y);
  for (int k = 0; k < kOutliers; ++k) y[b.idx[k]] = f16_to_f32(b.val[k]);
}

float dot(const void* row, const float* act, int64_t n) {
  double sum = 0;
  float q[kBlockSize];
  for (int64_t i = 0; i < n / kBlockSize; ++i) {
    const auto b = load_block<Block>(row, i);
    const float* a = act + i * kBlockSize;
    q3k::dequantize(b.q3_k, q);
    // Which slot, if any, owns each position (the later slot wins, as in dequantize).
    int8_t slot[kBlockSize];
    std::memset(slot, -1, sizeof slot);
    for (int k = 0; k < kOutliers; ++k) slot[b.idx[k]] = int8_t(k);
    for (int e = 0; e < kBlockSize; ++e) {
      const float w = slot[e] < 0 ? q[e] : f16_to_f32(b.val[slot[e]]);
      sum += double(w) * double(a[e]);
    }
  }
  return float(sum);
}

size_t quantize_rows(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                     const float* importance, Selection sel) {
  if (n_per_row % kBlockSize != 0)
    throw_error("q3_hifi: row length {} is not a multiple of {}", n_per_row, kBlockSize);
  const int64_t nb = n_per_row / kBlockSize;
  for (int64_t r = 0; r < nrows; ++r) {
    for (int64_t i = 0; i < nb; ++i) {
      Block b;
      quantize_block(src + r * n_per_row + i * kBlockSize,
                     importance ? importance + i * kBlockSize : nullptr, sel, b);
      store_block(dst, r * nb + i, b);
    }
  }
  return size_t(nrows * nb) * sizeof(Block);
}

namespace {

void dequantize_rows(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / kBlockSize; ++i)
    dequantize_block(load_block<Block>(src, i), dst + i * kBlockSize);
}

size_t quantize_rows_saving(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                            const float* importance) {
  return quantize_rows(src, dst, nrows, n_per_row, importance, Selection::kSaving);
}

}  // namespace

}  // namespace q3_hifi

void add_q3_hifi_codec(std::vector<Codec>& out) {
  out.push_back({GgmlType::Q3_HIFI, "q3_hifi", q3_hifi::kBlockSize,
                 sizeof(q3_hifi::Block), q3_hifi::dequantize_rows, q3_hifi::quantize_rows_saving,
                 ActFormat::Q8_K, nullptr, q3_hifi::grid()});
}

}  // namespace imq::quant
