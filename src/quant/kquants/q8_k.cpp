// Q8_K: the in-memory activation format of the K-quant dot products (never stored in files):
// super-blocks of 256 values, one f32 scale, int8 codes and the sums of each 16 codes.
//
//   offset 0        4                                  260                 292
//          +--------+----------------------------------+-------------------+
//          | d  f32 | qs[256] int8                     | bsums[16] int16   |
//          +--------+----------------------------------+-------------------+
//   x[e] = d * qs[e];   bsums[k] = qs[16k] + ... + qs[16k + 15]
//
// Quantization (as ggml): max = the signed value of largest |x|; iscale = -127 / max;
// q = min(127, round(iscale * x)); d = 1 / iscale. An all-zero block has d = 0 and zero codes.
// Importance is ignored.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "quant/kquants/kquants.h"
#include "quant/signed_absmax.h"

namespace imq::quant {
namespace {

void quantize_block_q8_k_ignoring_importance(const float* x, const float*, BlockQ8K* y) {
  quantize_block_q8_k(x, y);
}

}  // namespace

void quantize_block_q8_k(const float* x, BlockQ8K* y) {
  const float max = signed_absmax(x, kQK_K);
  if (max == 0) {
    std::memset(y, 0, sizeof *y);
    return;
  }
  const float iscale = -127.f / max;
  for (int j = 0; j < kQK_K; ++j) y->qs[j] = int8_t(std::min(127, nearest_int(iscale * x[j])));
  for (int k = 0; k < kQK_K / 16; ++k) {
    int sum = 0;
    for (int l = 0; l < 16; ++l) sum += y->qs[16 * k + l];
    y->bsums[k] = int16_t(sum);
  }
  y->d = 1 / iscale;
}

void dequantize_block_q8_k(const BlockQ8K& b, float* y) {
  for (int j = 0; j < kQK_K; ++j) y[j] = b.d * float(b.qs[j]);
}

Codec q8_k_codec() {
  return {GgmlType::Q8_K, "q8_K", kQK_K, sizeof(BlockQ8K),
          dequantize_blocks<BlockQ8K, dequantize_block_q8_k>,
          quantize_rows<BlockQ8K, quantize_block_q8_k_ignoring_importance>, ActFormat::F32};
}

}  // namespace imq::quant
