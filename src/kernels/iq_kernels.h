// SIMD kernels of the i-quants (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ4_NL,
// IQ4_XS), their rows of the kernel table (kernels/type_kernels.cpp). Highway, chosen at run time
// (kernels/iq_hwy.cpp). n: values in the row(s), a multiple of the block size (256; IQ4_NL 32).
//   *_to_float: n values of consecutive blocks as floats, the bits of the codec's dequantize
//               on every SIMD target.
//   *_dot:      one row · x (n floats), the row decoded as to_float decodes it; float sums
//               in another order than dequantize + dot_f32 (within float rounding of it).
#pragma once
#include <cstdint>

namespace imq::kernels::iq {

void iq1_s_to_float(const uint8_t* src, float* dst, int64_t n);
float iq1_s_dot(const uint8_t* row, const float* x, int64_t n);
void iq1_m_to_float(const uint8_t* src, float* dst, int64_t n);
float iq1_m_dot(const uint8_t* row, const float* x, int64_t n);
void iq2_xxs_to_float(const uint8_t* src, float* dst, int64_t n);
float iq2_xxs_dot(const uint8_t* row, const float* x, int64_t n);
void iq2_xs_to_float(const uint8_t* src, float* dst, int64_t n);
float iq2_xs_dot(const uint8_t* row, const float* x, int64_t n);
void iq2_s_to_float(const uint8_t* src, float* dst, int64_t n);
float iq2_s_dot(const uint8_t* row, const float* x, int64_t n);
void iq3_xxs_to_float(const uint8_t* src, float* dst, int64_t n);
float iq3_xxs_dot(const uint8_t* row, const float* x, int64_t n);
void iq3_s_to_float(const uint8_t* src, float* dst, int64_t n);
float iq3_s_dot(const uint8_t* row, const float* x, int64_t n);
void iq4_nl_to_float(const uint8_t* src, float* dst, int64_t n);
float iq4_nl_dot(const uint8_t* row, const float* x, int64_t n);
void iq4_xs_to_float(const uint8_t* src, float* dst, int64_t n);
float iq4_xs_dot(const uint8_t* row, const float* x, int64_t n);

}  // namespace imq::kernels::iq
