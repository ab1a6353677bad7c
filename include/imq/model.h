// Llama-family models (dense and Mixtral-style MoE) for CPU inference: a Model is the mapped
// GGUF file plus its hyperparameters and named weight views; a Session owns everything one
// evaluation needs (KV cache, activations, threads), allocated once at construction.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "imq/ggml_types.h"

namespace imq {
class MatmulObserver;
namespace gguf { class File; }

namespace model {

enum class RopeType : uint8_t {
  Normal,  // llama: rotate adjacent pairs (x[2i], x[2i+1])
  Neox,    // rotate (x[i], x[i + n_rot/2])
};

// llama.cpp CPU builds whose arithmetic the ggml-rounding backend reproduces (SessionOptions).
enum class GgmlCpu : uint8_t {
  Avx2,        // AVX2 + FMA
  Avx512Bf16,  // AVX512F/DQ + AVX512-BF16
};

// The FFN's gate activation: out = act(gate) · up.
enum class FfnActivation : uint8_t {
  Silu,      // llama, qwen: silu(g) = g / (1 + e^-g)
  GeluTanh,  // gemma: 0.5·g·(1 + tanh(√(2/π)·(g + 0.044715·g³)))
};

// Hyperparameters, from the <arch>.* keys (names as in GGUF / llama.cpp). The fields after
// rope_type say how an architecture's block differs from llama's (model/config.cpp lists the
// architectures and their differences in one table).
struct Config {
  std::string arch = "llama";  // general.architecture (also the key prefix)
  int64_t n_vocab = 0;        // rows of token_embd
  int64_t n_embd = 0;         // llama.embedding_length
  int64_t n_layer = 0;        // llama.block_count
  int64_t n_head = 0;         // llama.attention.head_count
  int64_t n_head_kv = 0;      // llama.attention.head_count_kv (default n_head)
  int64_t head_dim = 0;       // n_embd / n_head
  int64_t n_rot = 0;          // llama.rope.dimension_count (default head_dim)
  int64_t n_ff = 0;           // llama.feed_forward_length (dense FFN width)
  int64_t n_ff_exp = 0;       // expert FFN width: <arch>.expert_feed_forward_length or n_ff
  int64_t n_expert = 0;       // llama.expert_count (0: dense)
  int64_t n_expert_used = 0;  // llama.expert_used_count
  int64_t n_ctx_train = 0;    // llama.context_length
  float rms_eps = 1e-5f;      // llama.attention.layer_norm_rms_epsilon
  float rope_freq_base = 10000.0f;  // llama.rope.freq_base
  float rope_freq_scale = 1.0f;     // 1 / llama.rope.scaling.factor (linear or yarn)
  bool rope_yarn = false;           // llama.rope.scaling.type == "yarn"
  int64_t rope_yarn_orig_ctx = 0;   // llama.rope.scaling.original_context_length
  RopeType rope_type = RopeType::Normal;
  bool tied_output = false;         // no output.weight: the output projection is token_embd

  // --- differences from the llama block -------------------------------------------------
  float embd_scale = 1.0f;     // gemma: token embeddings multiplied by √n_embd
  bool qk_norm = false;        // qwen3, gemma3: per-head RMSNorm of Q and K (attn_q/k_norm) before RoPE
  bool post_norms = false;     // gemma3: RMSNorm of the attention and FFN outputs before each residual add
  FfnActivation ffn_act = FfnActivation::Silu;
  float q_scale = 1.0f;        // Q multiplied by this after RoPE (gemma: its attention scale)
  float kq_scale = 0.0f;       // softmax(kq_scale · q·k): 1/√head_dim (gemma: 1, Q is scaled)
  // Sliding-window attention (gemma3): layer il is a window layer when il % swa_period <
  // swa_period - 1; a query at position p sees keys p - n_swa + 1 .. p, rotated with base
  // rope_freq_base_swa. n_swa 0: every layer is global.
  int64_t n_swa = 0;           // <arch>.attention.sliding_window
  int64_t swa_period = 0;
  float rope_freq_base_swa = 10000.0f;  // <arch>.rope.freq_base_swa

  int64_t n_embd_kv() const { return n_head_kv * head_dim; }
  bool is_moe() const { return n_expert > 0; }
  bool is_swa(int64_t il) const { return n_swa > 0 && il % swa_period < swa_period - 1; }
};

struct LoadOptions {
  bool mmap = true;  // false: read the file into memory instead of mapping it (--no-mmap)
};

class Model {
 public:
  // Maps and validates a GGUF model: architecture "llama", every required tensor present with
  // the shape the hyperparameters imply and a type imq can read. Throws imq::Error.
  static std::unique_ptr<Model> load(const std::string& path);
  static std::unique_ptr<Model> load(const std::string& path, const LoadOptions& options);
  // A second model over `base`'s file and mapping (no second mapping or validation) with the
  // file's weights, whatever `base` replaced; the mapping lives as long as either model.
  static std::unique_ptr<Model> share(const Model& base);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const Config& config() const;
  const gguf::File& file() const;  // the GGUF file (metadata, tokenizer keys)
  struct Weights;
  const Weights& weights() const;  // defined in src/model/weights.h

  // Points the matmul weight `name` (e.g. "blk.0.attn_v.weight"; with tied embeddings
  // token_embd also serves as the output) at `data`, a tensor of the same shape stored as ggml
  // type `type`, which the model owns from now on; sessions use it from their next decode.
  // Empty `data` restores the file's tensor. This is how imq measures what quantizing one
  // tensor costs without writing a file. Throws naming the tensor on an unknown name, a type
  // imq cannot read or a size that does not match the shape. Not thread-safe.
  void replace_weight(std::string_view name, GgmlType type, std::vector<uint8_t> data);
  // The bytes given to replace_weight for `name` (empty when it holds the file's tensor).
  std::span<const uint8_t> replaced_weight(std::string_view name) const;

 private:
  Model();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct SessionOptions {
  int64_t n_ctx = 512;     // KV cache capacity in tokens
  int64_t n_ubatch = 512;  // most tokens per forward pass (micro-batch); longer inputs are split
  int n_threads = 0;       // <= 0: hardware concurrency
  // Round as llama.cpp's CPU backend does, so that its perplexity, KL divergence and imatrix
  // values are reproduced: matmul activations converted to the weight type's vec_dot format
  // (Q8_0, Q8_K, F16, BF16; kernels/activations.h), keys/values rounded to half as they enter
  // the cache (llama.cpp's default F16 cache), and where float order matters, ggml's own
  // arithmetic (kernels/ggml_exact.h: Q5_0/Q8_0 products, odd-length F16 rows, flash
  // attention's two paths, silu, rope). false: float throughout (tests of the engine's own
  // invariances: thread counts, micro-batches, a naive reference).
  bool ggml_rounding = true;
  // With ggml_rounding: the cache's key and value types (llama.cpp's -ctk/-ctv). true: F16,
  // keys/values rounded to half as they enter the cache (llama.cpp's default); false: F32,
  // stored as computed. Without ggml_rounding the cache is always float.
  bool f16_keys = true;
  bool f16_values = true;
  // With ggml_rounding: the llama.cpp CPU build whose last bits are reproduced. Its SIMD width
  // decides ggml's exp (silu, softmax), how softmax sums and F32 products are reduced, and the
  // BF16 product (VDPBF16PS on AVX512-BF16). The llama reference data come from an AVX2 build,
  // those under reference/archs from an AVX512-BF16 one (their logs' system_info lines).
  GgmlCpu ggml_cpu = GgmlCpu::Avx2;
  // With ggml_rounding: each weight type's product as that build computes it (its numbers to
  // the bit: kernels/ggml_exact.h). false: the same rounded activations, then SGEMM on float
  // tiles of the weights; only the order of the float sums differs (on the 125M bench model,
  // Q4_K_M: perplexity and KL divergence in bench/README.md), and K-quant, Q5_0 and Q8_0
  // products are much faster. The MoE router keeps its exact product (it chooses experts).
  bool exact_products = true;
  // Every position goes through the last layer even when decode asks for the logits of later
  // positions only (llama-imatrix's activations; only the output projection is skipped).
  bool full_last_layer = false;
};

// One sequence's evaluation state. Not thread-safe; it runs its own thread pool.
class Session {
 public:
  Session(const Model& model, const SessionOptions& options);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const Model& model() const;
  const SessionOptions& options() const;
  // The hook on every weight matmul (nullptr: none). Not owned.
  void set_observer(MatmulObserver* observer);

  void clear();            // empty the KV cache
  // The micro-batch llama.cpp would use for the following decodes (0: n_ubatch). With ggml
  // rounding, attention's arithmetic depends on it (below 64 rows ggml takes its per-row
  // path), so such micro-batches are used as given; otherwise the session keeps its n_ubatch,
  // which gives the same results faster.
  void set_micro_batch(int64_t rows);
  int64_t n_past() const;  // tokens in the KV cache

  // Appends `tokens` at positions n_past() ... and runs the forward pass in micro-batches of
  // at most n_ubatch tokens. Logits are computed only for tokens[first_output ...] (the last
  // layer's FFN and the output projection skip earlier rows, as llama.cpp does for tokens
  // that request no logits) and written to `logits` as [tokens.size() - first_output, n_vocab].
  void decode(std::span<const int32_t> tokens, int64_t first_output, std::span<float> logits);

  // The model one layer at a time (error-compensated quantization runs each layer on hidden
  // states that went through the layers before it): x holds one sequence's hidden states,
  // [n, n_embd] for positions 0..n-1 (n <= n_ctx), and goes through decode's own arithmetic.
  void embed(std::span<const int32_t> tokens, std::span<float> x);
  // x = layer il(x) in place; the observer sees the layer's matmuls. Clears the KV cache.
  // stop_at: the name of one of the layer's dense weights; the layer stops right after the
  // observer has seen that weight's input (x is then left unchanged): collecting the inputs of
  // the early weights costs only the part of the layer before them. Needs n <= n_ubatch.
  void forward_layer(int64_t il, std::span<float> x, std::string_view stop_at = {});
  // Where a dense layer can be taken up again after forward_layer or resume_layer stopped at
  // a weight: at attn_output (its input: the attention's output, [n, n_head * head_dim]), at
  // ffn_gate (the normed FFN input, [n, n_embd]) or at ffn_down (the gated activations,
  // [n, n_ff]).
  enum class LayerStage { kAttnOutput, kFfnGate, kFfnDown };
  // Runs the rest of dense layer il from `from`: `in` is the input of that stage's weight as the
  // observer saw it, x the residual stream at that point (the layer's input before
  // attn_output, the stream after the attention from ffn_gate on). With stop_at (a later dense
  // weight of the layer) it stops after the observer has seen that weight's input and x holds
  // the residual stream there; else x = the layer's output. The products are those of
  // forward_layer, in its order: the bits are the same as one uninterrupted pass. Returns
  // whether it stopped. Needs n <= n_ubatch; a MoE layer throws.
  bool resume_layer(int64_t il, LayerStage from, std::span<float> x, std::span<const float> in,
                    std::string_view stop_at = {});
  // xn = the input of the output projection (the final norm of x).
  void output_input(std::span<const float> x, std::span<float> xn);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Random-weight models for tests and benchmarks (`imq synth`).
struct SynthOptions {
  // general.architecture: llama, qwen2 (q/k/v biases), qwen3 (q/k norms, tied), qwen3moe
  // (q/k norms, experts of width n_ff), gemma3 (q/k norms, post-norms, GELU, tied, sliding
  // window `n_swa` on 5 of every 6 layers).
  std::string arch = "llama";
  bool moe = false;          // llama-moe: expert FFNs with a router (implied by qwen3moe)
  int64_t n_swa = 8;         // gemma3's sliding window
  int64_t n_embd = 64, n_layer = 2, n_head = 4, n_head_kv = 2, n_ff = 128;
  int64_t n_expert = 4, n_expert_used = 2;
  int64_t n_vocab = 320;     // byte tokens + merges (>= 259); ignored with vocab_from
  int64_t n_ctx_train = 512;
  uint64_t seed = 1;
  bool tied = false;         // no output.weight
  RopeType rope = RopeType::Normal;
  GgmlType type = GgmlType::F32;  // of the 2-D matmul weights: F32 or F16
  std::string vocab_from;    // copy tokenizer.* keys (and the vocabulary size) from this GGUF
};
void write_synthetic_model(const SynthOptions& options, const std::string& path);

}  // namespace model
}  // namespace imq
