// The two backends (model/backend.h).
#include "model/backend.h"

#include <vector>

#include "kernels/activations.h"
#include "kernels/ggml_exact.h"

namespace imq::model {
namespace {

// Float throughout: the engine's own arithmetic (tests of its invariances, error compensation).
class FloatBackend final : public Backend {
 public:
  FloatBackend(const Config& c, const SessionOptions& o, ThreadPool& pool, kernels::MatmulContext& ctx)
      : c_(c), pool_(pool), ctx_(ctx), scratch_(size_t(pool.size())) {
    for (auto& s : scratch_) s.resize(size_t(attention_scratch_floats(o.n_ctx)));
  }
  void matmul(std::span<const Product> ps, const float* x, int64_t n, bool) override {
    for (const Product& p : ps) kernels::matmul(*p.w, x, n, p.y, ctx_);
  }
  void router(const kernels::WeightView& w, const float* x, int64_t n, float* y) override {
    kernels::matmul(w, x, n, y, ctx_);
  }
  void gated_act(float* gate, const float* up, int64_t rows, int64_t n_ff) override {
    if (c_.ffn_act == FfnActivation::GeluTanh) model::geglu(gate, up, rows * n_ff, gate);
    else model::swiglu(gate, up, rows * n_ff, gate);
  }
  void rope(const RopeTable& t, float* x, int64_t n, int64_t heads, int64_t stride) override {
    t.apply(x, n, heads, stride, /*fused=*/false);
  }
  void store_kv(float*, float*, int64_t, int64_t) override {}
  void attention(const float* q, const float* k, const float* v, int64_t p0, int64_t n,
                 int64_t window, float* out) override {
    model::attention(c_, q, k, v, p0, n, window, out, pool_, scratch_);
  }
  int64_t micro_batch(int64_t, int64_t n_ubatch) const override { return n_ubatch; }

 private:
  const Config& c_;
  ThreadPool& pool_;
  kernels::MatmulContext& ctx_;
  std::vector<std::vector<float>> scratch_;  // attention, per thread
};

// llama.cpp's CPU backend (AVX2 + FMA build) to the bit: activations converted per weight type
// as it converts them, its products, silu and gelu, fused rope, F16 cache and flash attention.
class GgmlBackend final : public Backend {
 public:
  GgmlBackend(const Config& c, const SessionOptions& o, ThreadPool& pool,
              kernels::MatmulContext& ctx, int64_t max_row)
      : c_(c), pool_(pool), ctx_(ctx), f16_keys_(o.f16_keys), f16_values_(o.f16_values),
        exact_products_(o.exact_products),
        cpu_(o.ggml_cpu == GgmlCpu::Avx512Bf16 ? kernels::ggml::Cpu::Avx512Bf16
                                                : kernels::ggml::Cpu::Avx2),
        shape_{c.n_head, c.n_head / c.n_head_kv, c.head_dim, c.n_head * c.head_dim, c.n_embd_kv(),
               c.kq_scale, cpu_} {
    buffers_.rounded.resize(size_t(std::max<int64_t>(1, o.n_ubatch) * max_row));
  }
  void matmul(std::span<const Product> ps, const float* x, int64_t n, bool expert_rows) override {
    kernels::ggml::ExactInput in(buffers_, x, n, ps.front().w->ne0, pool_, cpu_);
    for (const Product& p : ps) {
      if (exact_products_) p.w->kernels->exact(*p.w, in, p.y, ctx_, expert_rows);
      else kernels::matmul(*p.w, in.rounded(p.w->codec->act), n, p.y, ctx_);
    }
  }
  void router(const kernels::WeightView& w, const float* x, int64_t n, float* y) override {
    kernels::ggml::ExactInput in(buffers_, x, n, w.ne0, pool_, cpu_);
    w.kernels->exact_router(w, in, y, ctx_);
  }
  void gated_act(float* gate, const float* up, int64_t rows, int64_t n_ff) override {
    // ggml's swiglu (SIMD silu over whole groups of 8) or geglu (its half-precision table).
    if (c_.ffn_act == FfnActivation::GeluTanh) kernels::ggml::geglu(gate, up, rows * n_ff, gate);
    else kernels::ggml::swiglu(gate, up, rows, n_ff, gate, cpu_);
  }
  void rope(const RopeTable& t, float* x, int64_t n, int64_t heads, int64_t stride) override {
    t.apply(x, n, heads, stride, /*fused=*/true);
  }
  void store_kv(float* k, float* v, int64_t n, int64_t n_kv) override {
    // The F16 cache (llama.cpp's default) keeps keys and values rounded to half.
    if (f16_keys_) kernels::round_activations(kernels::ActFormat::F16, k, n, n_kv, k);
    if (f16_values_) kernels::round_activations(kernels::ActFormat::F16, v, n, n_kv, v);
  }
  void attention(const float* q, const float* k, const float* v, int64_t p0, int64_t n,
                 int64_t window, float* out) override {
    kernels::ggml::attention(shape_, q, k, v, p0, n, window, out, pool_);
  }
  int64_t micro_batch(int64_t rows, int64_t n_ubatch) const override {
    // Only the attention path depends on the row count.
    return kernels::ggml::attention_tiled_path(rows, c_.head_dim) ? n_ubatch : rows;
  }

 private:
  const Config& c_;
  ThreadPool& pool_;
  kernels::MatmulContext& ctx_;
  bool f16_keys_, f16_values_, exact_products_;
  kernels::ggml::Cpu cpu_;
  kernels::ggml::AttentionShape shape_;
  kernels::ggml::ExactBuffers buffers_;
};

}  // namespace

std::unique_ptr<Backend> make_backend(const Config& c, const SessionOptions& o, ThreadPool& pool,
                                      kernels::MatmulContext& ctx, int64_t max_row) {
  if (o.ggml_rounding) return std::make_unique<GgmlBackend>(c, o, pool, ctx, max_row);
  return std::make_unique<FloatBackend>(c, o, pool, ctx);
}

}  // namespace imq::model
