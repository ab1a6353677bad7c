// Shared pieces of IQ4_NL and IQ4_XS (spec g.3, g.6): the non-linear 4-bit codebook, the
// nearest-entry lookup and the per-32-block scale search (ntry = 7, the llama-quantize path).
#pragma once
#include <cstdint>

namespace imq::quant::iq4 {

inline constexpr int kBlock = 32;  // elements per scale in both types

// Code q decodes to d * kCodebook[q] (ggml's kvalues_iq4nl).
inline constexpr int8_t kCodebook[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                         1,    13,   25,  38,  53,  69,  89,  113};

// Index of the codebook entry nearest to v; an exact tie between two neighbours goes to the
// higher index; values beyond either end clamp to index 0 / 15.
int nearest_code(float v);

// Weights of one 32-block: qw * sqrt(sigma2 + x^2) with importance, x^2 without.
void block_weights(const float* x, const float* qw, float sigma2, float* w);

// Scale search of one 32-block with weights w (ntry 7): returns the scale d (0 when the block
// is all (near) zero). The codes it settles on are not returned: both types re-assign every
// element afterwards with the scale they store.
float search_block_scale(const float* x, const float* w);

// Codes of a 32-block for x * inv_scale.
void assign_codes(const float* x, float inv_scale, uint8_t* codes);

// Packs 32 codes: low nibble of qs[j] = codes[j], high nibble = codes[j + 16].
void pack_codes(const uint8_t* codes, uint8_t* qs);

}  // namespace imq::quant::iq4
