// Importance for the token embedding, which no imatrix covers (it is a lookup, not a product).
//
// An error e in a token's embedding row enters the residual stream and reaches every norm that
// reads it; to first order, the product after norm N changes by W diag(g_N) e / rms, so
// column j's error costs g_N,j^2 * sum_i W[i,j]^2 per weight W that reads norm N's output.
// The importance of column j is that, summed over the model:
//   sum_l ( attn_norm_l,j^2 * colsq(attn_q, attn_k, attn_v of layer l)_j
//         + ffn_norm_l,j^2  * colsq(ffn_gate, ffn_up, the router and the experts' gate/up)_j )
//   + output_norm_j^2 * colsq(output)_j            (token_embd itself when output is tied)
// where colsq(W)_j = sum over W's rows of W[i,j]^2 (all experts for MoE weights). The residual
// stream's growth over the layers (which shrinks the weight of deep norms) is not modelled.
//
// Measured (error-compensated whole-model quantization, 64 x 256 calibration tokens, KLD on
// 5,120 wiki tokens, bench/README.md), against the embedding rounded without importance:
// Q2_K / Q3_K_M / Q4_K_M 0.91x / 0.95x / 1.07x on moe-gpt2bpe, 0.95x / 0.91x / 0.91x on
// dense-spm4k, 0.95x / 0.97x / 0.96x on dict8-spm4k; Q2_K calibrated and evaluated on other
// texts (licence texts of /usr/share/common-licenses) 0.99x / 0.93x / 0.96x. The norm gains
// alone (mean g^2) helped the MoE more but made dense-spm4k's Q2_K 1.15x worse; uniform
// importance was in between.
#pragma once
#include <vector>

#include "imq/gguf.h"

namespace imq::gptq {

// n_embd weights for token_embd's columns from the file's norms and the weights reading them,
// scaled to mean 1;
// empty when the file has no F32 norm of length n_embd (then the embedding keeps no importance).
std::vector<float> embedding_importance(const gguf::File& file, int64_t n_embd, int64_t n_layer);

}  // namespace imq::gptq
