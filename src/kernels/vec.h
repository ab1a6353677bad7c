// Vector primitives used by the matmul and attention code. Each has a portable scalar
// reference (vec_ref::*, the spec the SIMD versions are tested against) and a Highway
// implementation picked once per process by runtime dispatch (AVX3 / AVX2 / SSE4 / emulated).
#pragma once
#include <cstdint>
#include <vector>

namespace imq::kernels {

// Σ a[i]*b[i]. SIMD versions use several accumulators, so the rounding differs from the
// reference by a few ulp of the magnitudes involved.
float dot_f32(const float* a, const float* b, int64_t n);
// Same with `a` in IEEE half / bfloat16 (raw bits), `b` in float.
float dot_f16(const uint16_t* a, const float* b, int64_t n);
float dot_bf16(const uint16_t* a, const float* b, int64_t n);
// s[j] += Σ_r x[r*ne0 + j]² for n_rows rows, in double: float squares are exact in double, so
// every target gives the bits of the scalar loop (rows summed in order).
void add_squares(const float* x, int64_t n_rows, int64_t ne0, double* s);
// Activations as ggml's vec_dot formats hold them (quantize, then dequantize; the spec of each
// is in kernels/activations.h). n: a multiple of 32 (Q8_0) or 256 (Q8_K). out may alias x.
// Every target gives the bits of the scalar reference.
void round_q8_0(const float* x, int64_t n, float* out);
void round_q8_k(const float* x, int64_t n, float* out);
void round_f16(const float* x, int64_t n, float* out);
// Largest of n >= 1 values.
float max_f32(const float* x, int64_t n);
// x[i] = e^(x[i] − m) for i < n; returns Σ x[i] (float lanes, summed in double at the end).
// The SIMD exp is within a few ulp of std::exp.
double exp_sub_sum(float* x, int64_t n, float m);
// x[i] *= s.
void scale_f32(float* x, int64_t n, float s);
// Exact widening conversions of n values.
void f16_to_f32_row(const uint16_t* src, float* dst, int64_t n);
void bf16_to_f32_row(const uint16_t* src, float* dst, int64_t n);

// Name of the SIMD target the dispatcher chose (e.g. "AVX2"), for logs and benchmarks.
const char* simd_target_name();
// Tests: the targets compiled here that this CPU can run, and forcing one of them (0: back
// to the best one).
std::vector<int64_t> simd_targets();
void use_simd_target(int64_t target);

namespace vec_ref {
float dot_f32(const float* a, const float* b, int64_t n);
float dot_f16(const uint16_t* a, const float* b, int64_t n);
float dot_bf16(const uint16_t* a, const float* b, int64_t n);
double exp_sub_sum(float* x, int64_t n, float m);
void add_squares(const float* x, int64_t n_rows, int64_t ne0, double* s);
void round_q8_0(const float* x, int64_t n, float* out);
void round_q8_k(const float* x, int64_t n, float* out);
void round_f16(const float* x, int64_t n, float* out);
}  // namespace vec_ref

}  // namespace imq::kernels
