// Operations computed the way llama.cpp's CPU backend (AVX2 + FMA build) computes them, to the
// bit, where its rounding moves perplexity and KL divergence: small models whose activations
// are quantized to Q8_0 are chaotic (one activation rounded the other way changes a chunk's
// perplexity by up to 1 %), so agreeing to 0.1 % needs the same float operations in the same
// order. Each function states the arithmetic it performs; docs/DESIGN.md says where it is used.
// Bit-exactness needs fused multiply-add in the SIMD target (AVX2 and up); other targets give
// results within a few ulp.
#pragma once
#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/matmul.h"

namespace imq::kernels::ggml {

// The llama.cpp CPU build reproduced (model::GgmlCpu): AVX2 + FMA, or AVX512F/DQ + AVX512-BF16,
// whose v_expf, softmax sums, F32 tinyBLAS lanes and BF16 products differ in the last bits.
enum class Cpu : uint8_t { Avx2, Avx512Bf16 };

// ggml's vectorised exp (ggml_v_expf), per lane: z = fma(x, log2 e, 1.5·2²³), n = z − 1.5·2²³,
// b = x − n·ln2 (two fused steps), a degree-5 polynomial j(b) by fused steps, result
// fma(2ⁿ, j, 2ⁿ); |n| > 126 scales in two steps, |n| > 192 gives 0 or inf.
float v_expf(float x);
// out[i] = v_expf(x[i]) (SIMD; bit-identical to v_expf on FMA targets). out may alias x.
void v_expf_row(const float* x, int64_t n, float* out);
// The AVX512 ggml_v_expf: the same reduction, the polynomial's constant term 1 folded into its
// last fused step, the result j·2ⁿ (_mm512_scalef_ps) instead of fma(2ⁿ, j, 2ⁿ).
float v_expf_avx512(float x);
// out[i] = exp(x[i]) as `cpu`'s ggml_v_expf computes it. out may alias x.
void v_expf_row(const float* x, int64_t n, float* out, Cpu cpu);
// Σ out[i] for n a multiple of the SIMD width, as ggml_vec_soft_max_f32 adds its vectors: per
// vector of 8 (AVX2: hsum) or 16 (AVX512: _mm512_reduce_add_ps) floats, in double across.
double softmax_sum(const float* x, int64_t n, Cpu cpu);

// ggml_vec_swiglu_f32 on `rows` rows of n_ff: the first n_ff − n_ff mod 8 values of each row are
// x / (1 + v_expf(−x)) · up (the SIMD silu), the rest x / (1 + expf(−x)) · up. out may alias gate.
// AVX512: groups of 16 through v_expf_avx512.
void swiglu(const float* gate, const float* up, int64_t rows, int64_t n_ff, float* out,
            Cpu cpu = Cpu::Avx2);
// ggml_vec_geglu_f32 (GGML_GELU_FP16, ggml's default) on n values: gelu_tanh(x) · up, where
// gelu_tanh comes from a table over all half-precision inputs (x rounded to half, the table
// value rounded to half); x <= -10 gives 0 and x >= 10 gives x · up. out may alias gate.
void geglu(const float* gate, const float* up, int64_t n, float* out);
// ggml's scalar GELU (tanh approximation), in float: the function the table samples.
float gelu_tanh(float x);

// Activation rows as integer codes (floats) and block scales (kernels/act_codes.h), quantized
// once for every product that shares the input (q/k/v, gate/up).
//   Q8_0: codes lane-major per 32 (element 4t+r at r·8+t), d per 32, no bsums;
//   Q8_K: codes in element order, d per 256, bsums = sums of each 16 codes.
struct ActCodes {
  std::vector<float> q, d;
  std::vector<int32_t> bsums;
  int64_t n = 0, ne0 = 0;
};
void quantize_q8_0(const float* x, int64_t n, int64_t ne0, ActCodes& a, ThreadPool& pool);
void quantize_q8_k(const float* x, int64_t n, int64_t ne0, ActCodes& a, ThreadPool& pool);

// The buffers ExactInput converts into, allocated once (by the ggml-exact backend).
struct ExactBuffers {
  std::vector<float> rounded;  // [rows, ne0]: the input rounded to one ActFormat
  ActCodes q80, q8k;
};

// One input shared by a group of products (q/k/v, gate/up), converted on first use into what
// each weight's product takes (kernels/type_kernels.h), each conversion done once.
class ExactInput {
 public:
  // x: n rows of ne0 floats; b.rounded must hold n·ne0 floats.
  ExactInput(ExactBuffers& b, const float* x, int64_t n, int64_t ne0, ThreadPool& pool,
             Cpu cpu = Cpu::Avx2);
  int64_t rows() const { return n_; }
  Cpu cpu() const { return cpu_; }  // whose products the type kernels reproduce
  const float* raw() const { return x_; }
  // x as `f` holds it (kernels/activations.h); F32: x itself.
  const float* rounded(quant::ActFormat f);
  const ActCodes& q8_0();  // quantize_q8_0 of x
  const ActCodes& q8_k();  // quantize_q8_k of x

 private:
  ExactBuffers& b_;
  const float* x_;
  int64_t n_, ne0_;
  ThreadPool& pool_;
  Cpu cpu_;
  quant::ActFormat rounded_as_ = quant::ActFormat::F32;  // what b_.rounded holds (F32: nothing)
  bool q80_ = false, q8k_ = false;
};

// Q5_0 and Q8_0 weights, whose product llama.cpp computes from Q8_0 codes with integer block
// dot products (tinyBLAS and vec_dot agree; Q4_0 and IQ4_NL are repacked on AVX2 and keep the
// float path, kernels/type_kernels.cpp).
// y [a.n, w.ne1] = x·Wᵀ as ggml: per output, eight float lanes start at 0; for each block of
// 32, lane t gets fma(d_w·d_x, Σ_{e=4t..4t+3} q_w·q_x, lane_t); the result is
// ((l0+l4)+(l2+l6))+((l1+l5)+(l3+l7)). `a` from quantize_q8_0.
void matmul_q8_0(const WeightView& w, const ActCodes& a, float* y, MatmulContext& ctx);

// Q4_K and Q6_K weights with Q8_K codes (`a` from quantize_q8_k).
// Q6_K: ggml_vec_dot_q6_K_q8_K: eight lanes, lane L holding Σ over the eight runs of 32 of
// scale · Σ_{e=4L..4L+3} q·a (integers), then fma(d_x·d_w, lane, acc_L) per super-block and
// ggml's horizontal sum. Q4_K with rows of W a multiple of 8 is repacked on AVX2: per output
// one accumulator, fma(float(Σ scale·dot), d_w·d_x, acc) and the same for the mins, once per
// super-block (gemv: activation rows outside whole groups of 4, and every expert row) or once
// per pair of sub-blocks (gemm), result acc − acc_min; other Q4_K rows: ggml_vec_dot_q4_K_q8_K
// (eight lanes as Q6_K, the mins in four lanes added at the end).
// gemv_only: every row through gemv (expert products, mul_mat_id).
void matmul_q8_k(const WeightView& w, const ActCodes& a, float* y, MatmulContext& ctx, bool gemv_only);

// F32 weights with rows a multiple of 8 as tinyBLAS multiplies them: eight FMA lanes over the
// row, ggml's horizontal sum. Scalar: used for the MoE router, whose last bits choose experts
// (other F32 products keep SGEMM).
// AVX512 (Cpu::Avx512Bf16): sixteen lanes, rows a multiple of 16, _mm512_reduce_add_ps.
void matmul_f32_lanes(const WeightView& w, const float* x, int64_t n, float* y, Cpu cpu = Cpu::Avx2);

// BF16 weights as an AVX512-BF16 build of llama.cpp multiplies them (the machine that made the
// BF16 reference data), rows a multiple of 64: VDPBF16PS lanes, lane L of each 32-value step
// adding the products of values 2L and then 2L+1 (each product exact in float, each sum
// rounded; this order is the one measured closer to the reference logs, not documented), reduced as _mm512_reduce_add_ps. Dense products (tinyBLAS): one 16-lane
// accumulator over the row. vec_dot (expert rows, mul_mat_id): two accumulators over
// alternating 32-value steps, each reduced, added in double. xb: activations already rounded
// to BF16 (kernels/activations.h). Denormal inputs are not flushed as VDPBF16PS flushes them.
void matmul_bf16(const WeightView& w, const float* xb, int64_t n, float* y, MatmulContext& ctx,
                 bool vec_dot);

// F16 weights whose rows are not a multiple of 8 long skip tinyBLAS: ggml_vec_dot_f16 (four
// 8-lane fused-multiply-add accumulators over the first ne0 − ne0 mod 32 values, reduced as
// ((a0+a2)+(a1+a3)) then lanes (l+l₄) pairwise, the rest added in double). x16: activations
// already rounded to half (kernels/activations.h, ActFormat::F16).
void matmul_f16(const WeightView& w, const float* x16, int64_t n, float* y, MatmulContext& ctx);

// Causal attention of one micro-batch as ggml's flash attention (F16 K/V cache, F32 Q):
// q [n, ldq] (head h at h·hd), k/v caches [p0 + n, ldkv] (kv head g at g·hd) holding
// half-rounded values; out [n, ldq]. Head h reads kv head h / group.
// scale: of the scores q·k (1/√hd for llama). window > 0: a query at position p sees only the
// keys p - window + 1 .. p (sliding-window layers; the others are masked as ggml masks them).
struct AttentionShape {
  int64_t n_head = 0, group = 1, hd = 0, ldq = 0, ldkv = 0;
  float scale = 0;
  Cpu cpu = Cpu::Avx2;  // the tiled path's exp and sums (v_expf_row, softmax_sum)
};
// Micro-batches of 64 rows and more take ggml's tiled path (all float: scores as fused chains
// over the head dimension, online softmax per tile of 64 keys with v_expf, values accumulated
// by fused chains over the keys); smaller ones its per-row path (Q rounded to half, scores
// summed in double, values accumulated in half precision key by key).
bool attention_tiled_path(int64_t n_rows, int64_t hd);
void attention(const AttentionShape& s, const float* q, const float* k, const float* v, int64_t p0,
               int64_t n, int64_t window, float* out, ThreadPool& pool);

namespace detail {
// ggml's horizontal sum of eight float lanes (hsum_float_8, tinyBLAS's hsum).
inline float lanes_sum(const float* l) {
  return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
}
// SIMD pieces (ggml_exact_hwy.cpp) and their scalar references (ggml_exact.cpp).
// s[j] = chain over d < hd of fma(q[d], kt[d·64 + j], ·) from +0, for j < 64.
void key_chains(const float* q, const float* kt, int64_t hd, float* s);
// acc[d] = chain over i < n_keys of fma(p[i], v[i·ldv + d], acc[d]), for d < hd.
void value_chains(const float* p, const float* v, int64_t ldv, int64_t n_keys, int64_t hd, float* acc);
// The eight lane accumulators of one Q8_0 product: codes in lane-major blocks (element 4t+r of
// a block at r·8 + t), scales per block.
void q8_lanes(const float* wq, const float* wd, const float* xq, const float* xd, int64_t nb,
              float* lanes);
// q8_lanes of one weight row against four activation rows (xq + i·ldx, xd + i·ldd, i < 4):
// lanes [4][8], each row's the bits q8_lanes gives it.
void q8_lanes4(const float* wq, const float* wd, const float* xq, int64_t ldx, const float* xd,
               int64_t ldd, int64_t nb, float* lanes);
// acc[r] = fma(c[r], dw[r]·dt, acc[r]) for r < n (the per-output fused step after an exact
// integer sum c; dw[r]·dt rounded first).
void scaled_update(const float* c, const float* dw, float dt, int64_t n, float* acc);
// The same for a Q4_K pair of sub-blocks, and accm[r] = fma(m0[r]·b0 + m1[r]·b1, dmin[r]·dt, accm[r]).
void pair_update(const float* c, const float* dw, const float* dmin, const float* m0, const float* m1,
                 float dt, float b0, float b1, int64_t n, float* acc, float* accm);
namespace ref {
void key_chains(const float* q, const float* kt, int64_t hd, float* s);
void value_chains(const float* p, const float* v, int64_t ldv, int64_t n_keys, int64_t hd, float* acc);
void q8_lanes(const float* wq, const float* wd, const float* xq, const float* xd, int64_t nb,
              float* lanes);
void v_expf_row(const float* x, int64_t n, float* out);
void scaled_update(const float* c, const float* dw, float dt, int64_t n, float* acc);
void pair_update(const float* c, const float* dw, const float* dmin, const float* m0, const float* m1,
                 float dt, float b0, float b1, int64_t n, float* acc, float* accm);
}  // namespace ref
}  // namespace detail

}  // namespace imq::kernels::ggml
