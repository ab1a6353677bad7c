// Scale searches shared by the legacy codecs (spec g.4, g.5), written to reproduce ggml's
// float32 arithmetic exactly: left-to-right evaluation, one rounding per operation, float
// literals, no FMA (-ffp-contract=off). The K-quants use SYM and ASYM-IM from here and add
// their own searches in src/quant/kquants/ (kquants.h).
#pragma once
#include <bit>
#include <cstdint>

namespace imq::quant {

// Blocks whose largest |x| is below this are stored as all-zero scale (GROUP_MAX_EPS).
inline constexpr float kGroupMaxEps = 1e-15f;

// Round to nearest, ties to even, the way ggml does it: adding 1.5 * 2^23 leaves the integer
// in the low mantissa bits. Valid for |f| <= 4194303; outside that range (or for NaN) it
// returns the same garbage ggml would, which keeps odd inputs bit-compatible too.
inline int nearest_int(float f) {
  const float biased = f + 12582912.0f;
  return int(std::bit_cast<uint32_t>(biased) & 0x007fffffu) - 0x00400000;
}

// SYM ("make_qx_quants" with rmse_type 1): symmetric codes l in [-nmax, nmax-1] for n values
// with weights w (w == nullptr: w = x^2). Writes codes + nmax (0 .. 2*nmax-1) and returns the
// scale s with x ~ s * l. An all-(near-)zero block gives codes 0 and scale 0.
float sym_scale_search(int n, int nmax, const float* x, const float* w, uint8_t* codes);

// ASYM-IM ("make_qkx3_quants"): asymmetric codes l in [0, nmax] with x ~ scale * l - neg_min.
// Tries iscale = (rmin + rdelta * t + nmax) / (max - min) for t = 0..nstep and keeps the one
// with the smallest weighted error (|err| when use_mad, err^2 otherwise). w == nullptr: w = x^2.
// n <= 256. Returns the scale; *neg_min receives the non-negative offset (minus the minimum).
float asym_scale_search_im(int n, int nmax, const float* x, const float* w, uint8_t* codes,
                           float* neg_min, float rmin, float rdelta, int nstep, bool use_mad);

// Row-wide importance weights of the legacy imatrix paths (spec g.6): with
// sigma2 = sum(x^2) / n_per_row over the whole row, w_j = qw_j * sqrt(sigma2 + x_j^2).
float row_sigma2(const float* x, int64_t n_per_row);
void importance_weights(const float* x, const float* qw, float sigma2, int n, float* w);

}  // namespace imq::quant
