// The K-quant family (spec g.3, g.5, g.6): super-blocks of 256 weights with per-sub-block
// scales, byte-exact with ggml. Bit diagrams live in each type's file (q2_k.cpp ... q8_k.cpp).
//
// Per-block entry points take the 256 values of one super-block and, optionally, the 256
// importance values of the same columns (`qw`, a slice of the row's imatrix vector):
//   qw == nullptr  -> llama-quantize without an imatrix ("*_ref" search parameters);
//   qw != nullptr  -> llama-quantize with an imatrix (weights w_i = qw_i * sqrt(sigma2 + x_i^2)).
// They allocate nothing and may be called from any thread. Later codecs (Q3_HIFI, a better
// search) reuse them and the shared searches declared at the end.
#pragma once
#include <cstdint>

#include "imq/quant.h"
#include "quant/block_io.h"
#include "quant/legacy/search.h"  // nearest_int, kGroupMaxEps, SYM and ASYM-IM searches

namespace imq::quant {

inline constexpr int kQK_K = 256;  // weights per super-block

struct BlockQ2K {
  uint8_t scales[16];  // low nibble: scale code, high nibble: min code, per 16-sub-block
  uint8_t qs[64];      // 2-bit codes
  uint16_t d;          // f16 scale of the scale codes
  uint16_t dmin;       // f16 scale of the min codes
};
static_assert(sizeof(BlockQ2K) == 84, "Q2_K block is 84 bytes");

struct BlockQ3K {
  uint8_t hmask[32];   // high bit of each 3-bit code
  uint8_t qs[64];      // low 2 bits of each code
  uint8_t scales[12];  // 16 six-bit scale codes (see q3_k_scale_code)
  uint16_t d;          // f16 super-block scale
};
static_assert(sizeof(BlockQ3K) == 110, "Q3_K block is 110 bytes");

struct BlockQ4K {
  uint16_t d, dmin;    // f16 scales of the 6-bit scale and min codes
  uint8_t scales[12];  // 8 six-bit scales + 8 six-bit mins (see k4_scale_min)
  uint8_t qs[128];     // 4-bit codes
};
static_assert(sizeof(BlockQ4K) == 144, "Q4_K block is 144 bytes");

struct BlockQ5K {
  uint16_t d, dmin;
  uint8_t scales[12];  // as Q4_K
  uint8_t qh[32];      // 5th bit of each code
  uint8_t qs[128];     // low 4 bits of each code
};
static_assert(sizeof(BlockQ5K) == 176, "Q5_K block is 176 bytes");

struct BlockQ6K {
  uint8_t ql[128];    // low 4 bits
  uint8_t qh[64];     // high 2 bits
  int8_t scales[16];  // signed 8-bit scale per 16-sub-block
  uint16_t d;         // f16 super-block scale
};
static_assert(sizeof(BlockQ6K) == 210, "Q6_K block is 210 bytes");

struct BlockQ8K {
  float d;             // f32 scale (in-memory activation format, never in files)
  int8_t qs[256];
  int16_t bsums[16];   // sum of each 16 consecutive qs
};
static_assert(sizeof(BlockQ8K) == 292, "Q8_K block is 292 bytes");

// ---- per-block codecs ---------------------------------------------------------------------
void quantize_block_q2_k(const float* x, const float* qw, BlockQ2K* y);
void quantize_block_q3_k(const float* x, const float* qw, BlockQ3K* y);
void quantize_block_q4_k(const float* x, const float* qw, BlockQ4K* y);
void quantize_block_q5_k(const float* x, const float* qw, BlockQ5K* y);
void quantize_block_q6_k(const float* x, const float* qw, BlockQ6K* y);
void quantize_block_q8_k(const float* x, BlockQ8K* y);  // no importance: activations

// The codes of one super-block in element order (the bit layouts of q4_k.cpp / q6_k.cpp, for
// dequantization and for kernels/ggml_exact.h's integer products): Q4_K 0..15, Q6_K the 6-bit
// value minus 32 (−32..31).
void q4_k_codes(const BlockQ4K& b, uint8_t q[256]);
void q6_k_codes(const BlockQ6K& b, int8_t q[256]);

void dequantize_block_q2_k(const BlockQ2K& b, float* y);
void dequantize_block_q3_k(const BlockQ3K& b, float* y);
void dequantize_block_q4_k(const BlockQ4K& b, float* y);
void dequantize_block_q5_k(const BlockQ5K& b, float* y);
void dequantize_block_q6_k(const BlockQ6K& b, float* y);
void dequantize_block_q8_k(const BlockQ8K& b, float* y);

// ---- Q3_K pieces (for codecs built on Q3_K) -----------------------------------------------
// Stores 16 six-bit scale codes (0..63, value = code - 32) into scales[12].
void q3_k_pack_scales(const uint8_t codes[16], uint8_t scales[12]);
// The 6-bit scale code j (0..15) of a Q3_K scales[12] array.
inline int q3_k_scale_code(const uint8_t scales[12], int j) {
  const int low = j < 8 ? scales[j] & 15 : scales[j - 8] >> 4;
  return low | ((scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4;
}
// With y->scales and y->d already set: re-quantizes every element with the stored (f16) scale,
// q = clamp(round(x / (d * (s_j - 32))), -4, 3), keeping the search codes L (0..7) of a
// sub-block whose d * (s_j - 32) is 0; then packs L into y->qs and y->hmask. L is overwritten.
void q3_k_requantize_and_pack(const float* x, uint8_t L[256], BlockQ3K* y);

// ---- Q4_K / Q5_K shared scale layout ------------------------------------------------------
// Scale code and min code (0..63 each) of sub-block j (0..7) from the 12 packed bytes.
inline void k4_scale_min(const uint8_t q[12], int j, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = uint8_t((q[j + 4] & 15) | ((q[j - 4] >> 6) << 4));
    *m = uint8_t((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}
// Chooses codes (0..nmax), 8 scale/min codes and d/dmin for one Q4_K (nmax 15) or Q5_K
// (nmax 31) super-block, ref or imatrix path, and re-quantizes with the stored values.
// ref_rmin/ref_rdelta/ref_nstep: ASYM-REF parameters of the no-imatrix path.
void k4_quantize_super_block(const float* x, const float* qw, int nmax, float ref_rmin,
                             float ref_rdelta, int ref_nstep, uint8_t L[256], uint8_t scales[12],
                             uint16_t* d, uint16_t* dmin);

// ---- helper searches (spec g.5) -----------------------------------------------------------
// SYM and ASYM-IM are sym_scale_search / asym_scale_search_im from quant/legacy/search.h.
//
// ASYM-REF ("make_qkx2_quants"): as ASYM-IM but weights are required; codes 0..nmax,
// x ~ scale * l - *neg_min. Returns the scale.
float asym_scale_search_ref(int n, int nmax, const float* x, const float* w, uint8_t* codes,
                            float* neg_min, float rmin, float rdelta, int nstep, bool use_mad);
// POS ("make_qp_quants"): codes 0..nmax for non-negative values x (sub-block scales or mins),
// weights w required; grid search over 9 scales then up to 5 coordinate-descent passes.
// Returns the scale (sum w x l / sum w l^2). Codes are stored as uint8 like ggml does.
float pos_scale_search(int n, int nmax, const float* x, const float* w, uint8_t* codes);
// Q3-REF ("make_q3_quants" with rmse): symmetric codes with w = x^2, start at -nmax/max,
// up to 5 coordinate-descent passes; writes codes + nmax (0..2*nmax-1), returns the scale.
float q3_ref_scale_search(int n, int nmax, const float* x, uint8_t* codes);
// Imatrix weights of one sub-block of n values, w = qw * sqrt(sigma2 + x^2) (sigma2 from the
// whole super-block); returns their sum, added in order as ggml does (the POS weight).
inline float sub_block_weights(const float* x, const float* qw, float sigma2, int n, float* w) {
  importance_weights(x, qw, sigma2, n, w);
  float sum = 0;
  for (int l = 0; l < n; ++l) sum += w[l];
  return sum;
}

// ---- row loops shared by the codec rows ---------------------------------------------------
// Quantizes nrows rows (n_per_row a multiple of 256); every row uses the same importance.
template <typename Block, void (*QuantizeBlock)(const float*, const float*, Block*)>
size_t quantize_rows(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                     const float* importance) {
  const int64_t nb = n_per_row / kQK_K;
  for (int64_t r = 0; r < nrows; ++r) {
    for (int64_t i = 0; i < nb; ++i) {
      Block b;
      QuantizeBlock(src + (r * nb + i) * kQK_K, importance ? importance + i * kQK_K : nullptr, &b);
      store_block(dst, r * nb + i, b);
    }
  }
  return size_t(nrows * nb) * sizeof(Block);
}

template <typename Block, void (*DequantizeBlock)(const Block&, float*)>
void dequantize_blocks(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / kQK_K; ++i) DequantizeBlock(load_block<Block>(src, i), dst + i * kQK_K);
}

// Codec rows for the registry (register.cpp).
Codec q2_k_codec();
Codec q3_k_codec();
Codec q4_k_codec();
Codec q5_k_codec();
Codec q6_k_codec();
Codec q8_k_codec();

}  // namespace imq::quant
