// ggml's CPU backend does not multiply a quantized or half-precision weight by float
// activations: it first converts the activations to the weight type's "vec_dot_type" (Q8_0
// for the legacy types, Q8_K for the K-quants, F16 for F16 weights, ...) and takes integer or
// half-precision dot products. The rounding this adds is what makes llama.cpp's perplexity
// and KL divergence what they are, so the engine reproduces it: activations are rounded to
// the values the vec_dot_type can represent (quantize, then dequantize) before the float
// matmul. Measured cost on the 125M bench (Q4_K_M perplexity, SIMD, each input rounded once):
// ~0.1 s of 3.0 s.
#pragma once
#include <cstdint>

#include "imq/quant.h"

namespace imq::kernels {

// The format of a weight type's products is its codec's `act` (imq/quant.h).
using quant::ActFormat;

// out[r, :] = the values of x[r, :] after conversion to `f` and back, for n rows of ne0
// (ne0 a multiple of the block size: 32 for Q8_0, 256 for Q8_K). out may alias x. The work is
// done by kernels/vec.h's round_q8_0 / round_q8_k / round_f16 (SIMD, bit-identical to their
// scalar references in vec_ref).
//   Q8_0: per 32 values, d = amax/127 stored as F16, codes = round-half-even(x·127/amax)
//         (the AVX2 path of ggml's quantize_row_q8_0); value = f16(d)·code.
//   Q8_K: per 256 values, m = the value of largest magnitude, codes = min(127,
//         round-half-even(x·(−127/m))), d = 1/(−127/m) in float; value = d·code.
void round_activations(ActFormat f, const float* x, int64_t n, int64_t ne0, float* out);

}  // namespace imq::kernels
