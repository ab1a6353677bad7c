// --search imq per type: unpack a reference block into KParams, improve it (search_imq.cpp),
// pack it back in the type's exact byte layout (see the bit diagrams of q2_k.cpp ... q6_k.cpp),
// and keep whichever of the reference block and the candidate decodes (through the reference
// dequantizer) with the lower weighted error.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "quant/kquants/search_imq.h"

namespace imq::quant {
namespace {

// 2-bit planes shared by Q2_K and Q3_K: bits 2k of qs[32h + l] = element 128h + 32k + l.
void unpack_2bit(const uint8_t qs[64], uint8_t L[256]) {
  for (int h = 0; h < 2; ++h)
    for (int k = 0; k < 4; ++k)
      for (int l = 0; l < 32; ++l) L[128 * h + 32 * k + l] = (qs[32 * h + l] >> (2 * k)) & 3;
}
void pack_2bit(const uint8_t L[256], uint8_t qs[64]) {
  for (int h = 0; h < 2; ++h)
    for (int l = 0; l < 32; ++l) {
      const uint8_t* q = L + 128 * h + l;
      qs[32 * h + l] = uint8_t((q[0] & 3) | (q[32] & 3) << 2 | (q[64] & 3) << 4 | (q[96] & 3) << 6);
    }
}

}  // namespace

// ---- Q2_K ----
void unpack(const BlockQ2K& b, KParams& p) {
  p.d = f16_to_f32(b.d);
  p.dmin = f16_to_f32(b.dmin);
  for (int j = 0; j < 16; ++j) {
    p.sc[j] = b.scales[j] & 15;
    p.m[j] = b.scales[j] >> 4;
  }
  uint8_t L[256];
  unpack_2bit(b.qs, L);
  for (int i = 0; i < 256; ++i) p.q[i] = int8_t(L[i]);
}
void pack(const KParams& p, BlockQ2K* b) {
  b->d = f32_to_f16(p.d);
  b->dmin = f32_to_f16(p.dmin);
  for (int j = 0; j < 16; ++j) b->scales[j] = uint8_t(p.sc[j] | p.m[j] << 4);
  uint8_t L[256];
  for (int i = 0; i < 256; ++i) L[i] = uint8_t(p.q[i]);
  pack_2bit(L, b->qs);
}

// ---- Q3_K ----
void unpack(const BlockQ3K& b, KParams& p) {
  p.d = f16_to_f32(b.d);
  for (int j = 0; j < 16; ++j) p.sc[j] = q3_k_scale_code(b.scales, j) - 32;
  uint8_t L[256];
  unpack_2bit(b.qs, L);
  for (int e = 0; e < 256; ++e) {
    const int high = (b.hmask[e % 32] >> (e / 32)) & 1;
    p.q[e] = int8_t(L[e] - (high ? 0 : 4));
  }
}
void pack(const KParams& p, BlockQ3K* b) {
  b->d = f32_to_f16(p.d);
  uint8_t codes[16];
  for (int j = 0; j < 16; ++j) codes[j] = uint8_t(p.sc[j] + 32);
  q3_k_pack_scales(codes, b->scales);
  std::memset(b->hmask, 0, sizeof b->hmask);
  uint8_t L[256];
  for (int e = 0; e < 256; ++e) {
    const int l = p.q[e] + 4;  // 0..7
    if (l > 3) b->hmask[e % 32] |= uint8_t(1 << (e / 32));
    L[e] = uint8_t(l & 3);
  }
  pack_2bit(L, b->qs);
}

namespace {

// ---- Q4_K / Q5_K shared scales ----
void unpack_k4(uint16_t d, uint16_t dmin, const uint8_t scales[12], KParams& p) {
  p.d = f16_to_f32(d);
  p.dmin = f16_to_f32(dmin);
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    k4_scale_min(scales, j, &sc, &m);
    p.sc[j] = sc;
    p.m[j] = m;
  }
}
void pack_k4(const KParams& p, uint16_t* d, uint16_t* dmin, uint8_t scales[12]) {
  *d = f32_to_f16(p.d);
  *dmin = f32_to_f16(p.dmin);
  std::memset(scales, 0, 12);
  for (int j = 0; j < 8; ++j) {
    const auto s = uint8_t(p.sc[j]), m = uint8_t(p.m[j]);
    if (j < 4) {
      scales[j] |= s;
      scales[j + 4] |= m;
    } else {
      scales[j + 4] = uint8_t((s & 15) | ((m & 15) << 4));
      scales[j - 4] |= uint8_t((s >> 4) << 6);
      scales[j] |= uint8_t((m >> 4) << 6);
    }
  }
}

}  // namespace

void unpack(const BlockQ4K& b, KParams& p) {
  unpack_k4(b.d, b.dmin, b.scales, p);
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) {
      p.q[64 * c + l] = int8_t(b.qs[32 * c + l] & 15);
      p.q[64 * c + 32 + l] = int8_t(b.qs[32 * c + l] >> 4);
    }
}
void pack(const KParams& p, BlockQ4K* b) {
  pack_k4(p, &b->d, &b->dmin, b->scales);
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l)
      b->qs[32 * c + l] = uint8_t(p.q[64 * c + l] | (p.q[64 * c + 32 + l] << 4));
}

void unpack(const BlockQ5K& b, KParams& p) {
  unpack_k4(b.d, b.dmin, b.scales, p);
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) {
      p.q[64 * c + l] = int8_t((b.qs[32 * c + l] & 15) | ((b.qh[l] >> (2 * c)) & 1) << 4);
      p.q[64 * c + 32 + l] = int8_t((b.qs[32 * c + l] >> 4) | ((b.qh[l] >> (2 * c + 1)) & 1) << 4);
    }
}
void pack(const KParams& p, BlockQ5K* b) {
  pack_k4(p, &b->d, &b->dmin, b->scales);
  std::memset(b->qh, 0, sizeof b->qh);
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) {
      const int lo = p.q[64 * c + l], hi = p.q[64 * c + 32 + l];
      b->qh[l] |= uint8_t(((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
      b->qs[32 * c + l] = uint8_t((lo & 15) | ((hi & 15) << 4));
    }
}

// ---- Q6_K ----
void unpack(const BlockQ6K& b, KParams& p) {
  p.d = f16_to_f32(b.d);
  for (int j = 0; j < 16; ++j) p.sc[j] = b.scales[j];
  for (int h = 0; h < 2; ++h) {
    const uint8_t* ql = b.ql + 64 * h;
    const uint8_t* qh = b.qh + 32 * h;
    int8_t* q = p.q + 128 * h;
    for (int l = 0; l < 32; ++l) {
      q[l] = int8_t(((ql[l] & 15) | ((qh[l] & 3) << 4)) - 32);
      q[l + 32] = int8_t(((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4)) - 32);
      q[l + 64] = int8_t(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
      q[l + 96] = int8_t(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
    }
  }
}
void pack(const KParams& p, BlockQ6K* b) {
  b->d = f32_to_f16(p.d);
  for (int j = 0; j < 16; ++j) b->scales[j] = int8_t(p.sc[j]);
  for (int h = 0; h < 2; ++h) {
    uint8_t q[128];
    for (int i = 0; i < 128; ++i) q[i] = uint8_t(p.q[128 * h + i] + 32);
    uint8_t* ql = b->ql + 64 * h;
    uint8_t* qh = b->qh + 32 * h;
    for (int l = 0; l < 32; ++l) {
      ql[l] = uint8_t((q[l] & 15) | ((q[l + 64] & 15) << 4));
      ql[l + 32] = uint8_t((q[l + 32] & 15) | ((q[l + 96] & 15) << 4));
      qh[l] = uint8_t((q[l] >> 4) | ((q[l + 32] >> 4) << 2) | ((q[l + 64] >> 4) << 4) |
                      ((q[l + 96] >> 4) << 6));
    }
  }
}

namespace {

template <typename Block, void (*Reference)(const float*, const float*, Block*),
          void (*Dequantize)(const Block&, float*), bool kSquared = false>
void improve_block(GgmlType type, const KShape& shape, const float* x, const float* qw, Block* y) {
  Reference(x, qw, y);
  KParams p;
  unpack(*y, p);
  if (p.d == 0 || !std::isfinite(p.d) || !std::isfinite(p.dmin)) return;
  float w[kQK_K];
  k_imq_weights(type, x, qw, w, kSquared);
  k_improve(shape, x, w, p);
  Block cand;
  pack(p, &cand);
  float yr[kQK_K], yc[kQK_K];
  Dequantize(*y, yr);
  Dequantize(cand, yc);
  if (k_block_error(x, yc, w) < k_block_error(x, yr, w)) *y = cand;
}

}  // namespace

void quantize_block_q2_k_imq(const float* x, const float* qw, BlockQ2K* y) {
  improve_block<BlockQ2K, quantize_block_q2_k, dequantize_block_q2_k>(GgmlType::Q2_K, kQ2, x, qw,
                                                                       y);
}
void quantize_block_q3_k_imq(const float* x, const float* qw, BlockQ3K* y) {
  improve_block<BlockQ3K, quantize_block_q3_k, dequantize_block_q3_k>(GgmlType::Q3_K, kQ3, x, qw,
                                                                       y);
}
void quantize_block_q2_k_imq_sq(const float* x, const float* qw, BlockQ2K* y) {
  improve_block<BlockQ2K, quantize_block_q2_k, dequantize_block_q2_k, true>(GgmlType::Q2_K, kQ2, x, qw, y);
}
void quantize_block_q3_k_imq_sq(const float* x, const float* qw, BlockQ3K* y) {
  improve_block<BlockQ3K, quantize_block_q3_k, dequantize_block_q3_k, true>(GgmlType::Q3_K, kQ3, x, qw, y);
}
void quantize_block_q4_k_imq(const float* x, const float* qw, BlockQ4K* y) {
  improve_block<BlockQ4K, quantize_block_q4_k, dequantize_block_q4_k>(GgmlType::Q4_K, kQ4, x, qw,
                                                                       y);
}
void quantize_block_q5_k_imq(const float* x, const float* qw, BlockQ5K* y) {
  improve_block<BlockQ5K, quantize_block_q5_k, dequantize_block_q5_k>(GgmlType::Q5_K, kQ5, x, qw,
                                                                       y);
}
void quantize_block_q6_k_imq(const float* x, const float* qw, BlockQ6K* y) {
  improve_block<BlockQ6K, quantize_block_q6_k, dequantize_block_q6_k>(GgmlType::Q6_K, kQ6, x, qw,
                                                                       y);
}

}  // namespace imq::quant
