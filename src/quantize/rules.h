// llama-quantize's per-tensor decisions (spec e "which tensors are quantized", f "mixes"):
// whether a tensor is quantized at all, the mix rules of each file type, the output-tensor
// rule and the shape fallback. Pure functions of the model's hyperparameters and a small
// counter state that follows the tensors in output order.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "imq/gguf.h"
#include "imq/quantize.h"

namespace imq::quantize {

// The hyperparameters the rules read (llama.cpp's hparams), from the model's GGUF keys.
struct ModelInfo {
  std::string arch;        // general.architecture
  int n_layer = 0;         // <arch>.block_count
  int n_head = 0;          // <arch>.attention.head_count (layer 0 when per layer)
  int n_head_kv = 0;       // <arch>.attention.head_count_kv (default n_head)
  int n_expert = 0;        // <arch>.expert_count (0 for dense models)
  bool has_output = false; // an output.weight tensor exists (else embeddings are tied)
  bool is_70b = false;     // LLaMA-70B: 80 layers with grouped-query attention
  int n_attention_wv = 0;  // tensors named *attn_v.weight, *attn_qkv.weight, *attn_kv_b.weight

  int n_gqa() const { return n_head_kv == 0 ? 0 : n_head / n_head_kv; }
  bool is_falcon() const { return arch == "falcon"; }
};

ModelInfo read_model_info(const gguf::File& model);

// Counters advanced as the rules visit tensors (llama.cpp's quantize_state_impl).
struct MixState {
  int i_attention_wv = 0;
  int i_ffn_down = 0;
  int i_ffn_gate = 0;
  int i_ffn_up = 0;
};

// True when llama-quantize would consider the tensor for quantization at all (a weight
// matrix that is not a norm, router, positional embedding or other small special tensor).
bool is_quantizable(std::string_view name, uint32_t n_dims, bool leave_output_tensor);

// True for block-quantized ggml types (not F32/F16/BF16/integer types).
bool is_quantized_type(GgmlType type);

// The mix rules (llama_tensor_get_type before the fallback): the type of `name` for a file
// type whose default tensor type is `default_type`. Advances `state`.
GgmlType mix_type(const ModelInfo& model, MixState& state, FType ftype, bool has_imatrix,
                  std::string_view name, int64_t ne0, GgmlType default_type);

// Whether a tensor of this type needs imatrix data (llama-quantize refuses to write it
// without): the 1-, 2- and IQ3_XXS i-quants, and Q2_K inside a Q2_K_S file; never for
// token_embd.weight and output.weight.
bool requires_imatrix(std::string_view name, GgmlType type, FType ftype);

// The shape fallback: `type` when ne0 is a multiple of its block size, else the replacement
// (Q4_K -> Q5_0, ..., F16 when that still does not fit). Throws naming the tensor when no
// fallback exists for the type.
GgmlType shape_fallback(std::string_view name, int64_t ne0, GgmlType type);

}  // namespace imq::quantize
