// The kernel table (kernels/type_kernels.h): the rows of the types with kernels of their own.
#include "kernels/type_kernels.h"

#include <cstring>

#include "imq/ggml_types.h"
#include "kernels/ggml_exact.h"
#include "kernels/iq_kernels.h"
#include "kernels/matmul.h"
#include "kernels/vec.h"

namespace imq::kernels {
namespace {

// --- generic: every type with a codec ---------------------------------------------------

// ggml converts the activations to the type's vec_dot_type; the float product of the rounded
// values is llama.cpp's to within the order of its sums.
void exact_rounded(const WeightView& w, ggml::ExactInput& x, float* y, MatmulContext& ctx, bool) {
  matmul(w, x.rounded(w.codec->act), x.rows(), y, ctx);
}
void router_as_product(const WeightView& w, ggml::ExactInput& x, float* y, MatmulContext& ctx) {
  w.kernels->exact(w, x, y, ctx, false);
}

constexpr TypeKernels kGeneric{nullptr, nullptr, false, exact_rounded, router_as_product};

// --- float rows -------------------------------------------------------------------------

void f32_rows(const uint8_t* src, float* dst, int64_t n) { std::memcpy(dst, src, size_t(n) * 4); }
float f32_dot(const uint8_t* row, const float* x, int64_t n) {
  return dot_f32(reinterpret_cast<const float*>(row), x, n);
}
// tinyBLAS's F32 product (eight fused lanes) where the rows allow it: the router's last bits
// choose experts.
void f32_router(const WeightView& w, ggml::ExactInput& x, float* y, MatmulContext& ctx) {
  if (w.ne0 % (x.cpu() == ggml::Cpu::Avx2 ? 8 : 16) == 0)
    ggml::matmul_f32_lanes(w, x.raw(), x.rows(), y, x.cpu());
  else
    exact_rounded(w, x, y, ctx, false);
}

void f16_rows(const uint8_t* src, float* dst, int64_t n) {
  f16_to_f32_row(reinterpret_cast<const uint16_t*>(src), dst, n);
}
float f16_dot(const uint8_t* row, const float* x, int64_t n) {
  return dot_f16(reinterpret_cast<const uint16_t*>(row), x, n);
}
// F16 rows that are not a multiple of 8 long skip tinyBLAS: ggml_vec_dot_f16.
void f16_exact(const WeightView& w, ggml::ExactInput& x, float* y, MatmulContext& ctx, bool) {
  const float* x16 = x.rounded(quant::ActFormat::F16);
  if (w.ne0 % 8)
    ggml::matmul_f16(w, x16, x.rows(), y, ctx);
  else
    matmul(w, x16, x.rows(), y, ctx);
}

void bf16_rows(const uint8_t* src, float* dst, int64_t n) {
  bf16_to_f32_row(reinterpret_cast<const uint16_t*>(src), dst, n);
}
float bf16_dot(const uint8_t* row, const float* x, int64_t n) {
  return dot_bf16(reinterpret_cast<const uint16_t*>(row), x, n);
}
// An AVX512-BF16 build's VDPBF16PS products where the rows allow them (multiples of 64), else
// (and on AVX2) the float product of the rounded values.
void bf16_exact(const WeightView& w, ggml::ExactInput& x, float* y, MatmulContext& ctx,
                bool expert_rows) {
  const float* xb = x.rounded(quant::ActFormat::BF16);
  if (x.cpu() == ggml::Cpu::Avx512Bf16 && w.ne0 % 64 == 0)
    ggml::matmul_bf16(w, xb, x.rows(), y, ctx, expert_rows);
  else
    matmul(w, xb, x.rows(), y, ctx);
}

// --- integer products from activation codes ---------------------------------------------

void q8_0_codes_exact(const WeightView& w, ggml::ExactInput& x, float* y, MatmulContext& ctx, bool) {
  ggml::matmul_q8_0(w, x.q8_0(), y, ctx);
}
void q8_k_codes_exact(const WeightView& w, ggml::ExactInput& x, float* y, MatmulContext& ctx,
                      bool expert_rows) {
  ggml::matmul_q8_k(w, x.q8_k(), y, ctx, expert_rows);
}

// --- i-quants: SIMD rows to float and fused dots (kernels/iq_hwy.cpp) ---------------------

// The codec's bits from to_float, so SGEMM tiles and the ggml-rounded products are those of
// the generic row; only the few-row dots sum in another order.
constexpr TypeKernels iq_row(void (*to_float)(const uint8_t*, float*, int64_t),
                             float (*dot)(const uint8_t*, const float*, int64_t)) {
  return {to_float, dot, false, exact_rounded, router_as_product};
}

struct Row {
  GgmlType type;
  TypeKernels k;
};
// Q4_0 and IQ4_NL are repacked by llama.cpp on AVX2 and keep the generic product (float products
// of the rounded activations agree with it there; IQ4_NL's row only decodes faster);
// docs/DESIGN.md "Matching llama.cpp's numbers".
constexpr Row kRows[] = {
    {GgmlType::F32, {f32_rows, f32_dot, true, exact_rounded, f32_router}},
    {GgmlType::F16, {f16_rows, f16_dot, false, f16_exact, router_as_product}},
    {GgmlType::BF16, {bf16_rows, bf16_dot, false, bf16_exact, router_as_product}},
    {GgmlType::Q5_0, {nullptr, nullptr, false, q8_0_codes_exact, router_as_product}},
    {GgmlType::Q8_0, {nullptr, nullptr, false, q8_0_codes_exact, router_as_product}},
    {GgmlType::Q4_K, {nullptr, nullptr, false, q8_k_codes_exact, router_as_product}},
    {GgmlType::Q6_K, {nullptr, nullptr, false, q8_k_codes_exact, router_as_product}},
    {GgmlType::IQ1_S, iq_row(iq::iq1_s_to_float, iq::iq1_s_dot)},
    {GgmlType::IQ1_M, iq_row(iq::iq1_m_to_float, iq::iq1_m_dot)},
    {GgmlType::IQ2_XXS, iq_row(iq::iq2_xxs_to_float, iq::iq2_xxs_dot)},
    {GgmlType::IQ2_XS, iq_row(iq::iq2_xs_to_float, iq::iq2_xs_dot)},
    {GgmlType::IQ2_S, iq_row(iq::iq2_s_to_float, iq::iq2_s_dot)},
    {GgmlType::IQ3_XXS, iq_row(iq::iq3_xxs_to_float, iq::iq3_xxs_dot)},
    {GgmlType::IQ3_S, iq_row(iq::iq3_s_to_float, iq::iq3_s_dot)},
    {GgmlType::IQ4_NL, iq_row(iq::iq4_nl_to_float, iq::iq4_nl_dot)},
    {GgmlType::IQ4_XS, iq_row(iq::iq4_xs_to_float, iq::iq4_xs_dot)},
};

}  // namespace

const TypeKernels& type_kernels(const quant::Codec& codec) {
  for (const Row& r : kRows)
    if (r.type == codec.type) return r.k;
  return kGeneric;
}

}  // namespace imq::kernels
