// Session: buffers allocated once, micro-batching, and the forward pass of one micro-batch.
#include <algorithm>
#include <cstring>

#include "imq/error.h"
#include "model/session_impl.h"

namespace imq::model {
namespace {

int64_t max_row_length(const Config& c) {
  return std::max({c.n_embd, c.n_ff, c.n_ff_exp, c.n_head * c.head_dim});
}

template <typename T>
std::vector<T> buffer(int64_t rows, int64_t cols) {
  return std::vector<T>(size_t(rows * cols));
}

const SessionOptions& checked(const SessionOptions& o) {
  if (o.n_ctx <= 0) throw_error("context size must be positive, got {}", o.n_ctx);
  if (o.n_ubatch <= 0) throw_error("micro-batch size must be positive, got {}", o.n_ubatch);
  return o;
}

}  // namespace

Session::Impl::Impl(const Model& m, const SessionOptions& o)
    : model(m), c(m.config()), w(m.weights()), opt(checked(o)), pool(o.n_threads),
      mm_ctx(pool, max_row_length(m.config())),
      backend(make_backend(m.config(), opt, pool, mm_ctx, max_row_length(m.config()))),
      rope(m.config(), m.config().rope_freq_base,
           m.weights().rope_freqs ? m.weights().rope_freqs->data : nullptr,
           std::max<int64_t>(1, o.n_ubatch)) {
  if (c.n_swa > 0)
    rope_swa.emplace(c, c.rope_freq_base_swa, w.rope_freqs ? w.rope_freqs->data : nullptr,
                     std::max<int64_t>(1, o.n_ubatch));
  const int64_t nu = opt.n_ubatch;
  micro_batch = nu;
  kv.n_ctx = opt.n_ctx;
  kv.row = c.n_embd_kv();
  kv.k = buffer<float>(c.n_layer * opt.n_ctx, kv.row);
  kv.v = buffer<float>(c.n_layer * opt.n_ctx, kv.row);
  x = buffer<float>(nu, c.n_embd);
  xn = buffer<float>(nu, c.n_embd);
  q = buffer<float>(nu, c.n_head * c.head_dim);
  attn = buffer<float>(nu, c.n_head * c.head_dim);
  proj = buffer<float>(nu, c.n_embd);
  const int64_t n_ff = std::max(c.n_ff, c.is_moe() ? c.n_ff_exp : 0);
  gate = buffer<float>(nu, n_ff);
  up = buffer<float>(nu, n_ff);
  if (c.is_moe()) {
    moe.router = buffer<float>(nu, c.n_expert);
    moe.order = buffer<int32_t>(1, c.n_expert);
    moe.selected = buffer<int32_t>(nu, c.n_expert_used);
    moe.weight = buffer<float>(nu, c.n_expert_used);
    moe.rows.reserve(size_t(nu));
    moe.slots.reserve(size_t(nu));
    moe.x = buffer<float>(nu, c.n_embd);
    moe.out = buffer<float>(nu, c.n_embd);
    moe.slot_out = buffer<float>(nu * c.n_expert_used, c.n_embd);
  }
}

void Session::Impl::matmul(std::initializer_list<Product> products, const float* in, int64_t n,
                           int32_t expert) {
  // The observer sees the float activations (as llama-imatrix does), before any product.
  if (observer) [[unlikely]]
    for (const Product& p : products) {
      MatmulEvent e{p.w.name, p.w.ne0, n, in, expert, expert >= 0 ? int32_t(c.n_expert) : 0};
      observer->on_matmul(e);
      if (!stop_at.empty() && expert < 0 && p.w.name == stop_at) throw Stop{};
    }
  constexpr size_t kMaxProducts = 3;  // q/k/v
  if (products.size() > kMaxProducts) throw_error("matmul: {} products share one input", products.size());
  WeightView experts[kMaxProducts];
  Backend::Product ps[kMaxProducts];
  size_t i = 0;
  for (const Product& p : products) {
    const WeightView* w = &p.w;
    if (expert >= 0) w = &(experts[i] = p.w.expert(expert));
    ps[i++] = {w, p.y};
  }
  backend->matmul(std::span(ps, i), in, n, expert >= 0);
}

void Session::Impl::router(const WeightView& w, const float* in, int64_t n, float* y) {
  if (observer) [[unlikely]] {
    MatmulEvent e{w.name, w.ne0, n, in, -1, 0};
    observer->on_matmul(e);
    if (!stop_at.empty() && w.name == stop_at) throw Stop{};
  }
  backend->router(w, in, n, y);
}

void Session::Impl::forward(const int32_t* tokens, int64_t n, int64_t out_from, float* logits) {
  const int64_t d = c.n_embd;
  // x[t] = token_embd[tokens[t]]
  for (int64_t t = 0; t < n; ++t) {
    const int32_t id = tokens[t];
    if (id < 0 || id >= c.n_vocab)
      throw_error("token id {} at position {} is outside the vocabulary (0..{})", id, n_past + t,
                  c.n_vocab - 1);
    kernels::dequantize_rows(w.token_embd, id, id + 1, x.data() + t * d);
  }
  if (c.embd_scale != 1.0f)  // gemma: x *= √n_embd
    for (int64_t i = 0; i < n * d; ++i) x[size_t(i)] *= c.embd_scale;
  compute_rope(n_past, n);

  int64_t rows = n;  // rows of x still carried (the last layer keeps only output rows)
  auto keep_output_rows = [&] {  // drops the rows whose logits were not asked for, once
    if (out_from == 0 || rows != n) return;
    rows = n - out_from;
    if (rows > 0) std::memmove(x.data(), x.data() + out_from * d, size_t(rows * d) * sizeof(float));
  };
  for (int64_t il = 0; il < c.n_layer; ++il) {
    const LayerWeights& L = w.layers[size_t(il)];
    attention_block(L, il, n);  // x += wo · attention(norm(x))
    // Only the rows that produce logits go through the last FFN (as llama.cpp does), unless
    // every row must (full_last_layer: llama-imatrix's activations).
    if (il == c.n_layer - 1 && !opt.full_last_layer) keep_output_rows();
    if (rows == 0) break;
    ffn_block(L, rows);  // x += ffn(norm(x))
  }
  n_past += n;
  keep_output_rows();
  if (rows <= 0) return;
  rmsnorm(x.data(), w.output_norm.data, rows, d, c.rms_eps, xn.data());
  matmul(w.output, xn.data(), rows, logits);
}

void Session::Impl::attention_block(const LayerWeights& L, int64_t il, int64_t n) {
  const int64_t d = c.n_embd, n_q = c.n_head * c.head_dim, n_kv = c.n_embd_kv();
  float* kc = kv.k_layer(il);
  float* vc = kv.v_layer(il);
  float* k_new = kc + n_past * n_kv;  // [n, n_kv]: this micro-batch's cache rows
  float* v_new = vc + n_past * n_kv;
  rmsnorm(x.data(), L.attn_norm.data, n, d, c.rms_eps, xn.data());
  // q [n, n_head*head_dim], k_new/v_new [n, n_head_kv*head_dim]
  matmul({{L.wq, q.data()}, {L.wk, k_new}, {L.wv, v_new}}, xn.data(), n);
  auto add_bias = [](float* y, int64_t n, const std::optional<VectorView>& b) {
    if (!b) return;
    for (int64_t t = 0; t < n; ++t)
      for (int64_t i = 0; i < b->n; ++i) y[t * b->n + i] += b->data[i];
  };
  add_bias(q.data(), n, L.bq);
  add_bias(k_new, n, L.bk);
  add_bias(v_new, n, L.bv);
  if (c.qk_norm) {  // qwen3, gemma3: RMSNorm of every head of q and k
    rmsnorm(q.data(), L.attn_q_norm.data, n * c.n_head, c.head_dim, c.rms_eps, q.data());
    rmsnorm(k_new, L.attn_k_norm.data, n * c.n_head_kv, c.head_dim, c.rms_eps, k_new);
  }
  const RopeTable& r = rope_of(il);  // gemma3: sliding-window layers rotate with their own base
  backend->rope(r, q.data(), n, c.n_head, n_q);
  backend->rope(r, k_new, n, c.n_head_kv, n_kv);
  if (c.q_scale != 1.0f)  // gemma3: q scaled here, the attention itself unscaled
    for (int64_t i = 0; i < n * n_q; ++i) q[size_t(i)] *= c.q_scale;
  backend->store_kv(k_new, v_new, n, n_kv);
  backend->attention(q.data(), kc, vc, n_past, n, c.is_swa(il) ? c.n_swa : 0, attn.data());
  attn_output(L, n);
}

void Session::Impl::attn_output(const LayerWeights& L, int64_t n) {
  matmul(L.wo, attn.data(), n, proj.data());
  if (L.bo)
    for (int64_t t = 0; t < n; ++t)
      for (int64_t i = 0; i < L.bo->n; ++i) proj[size_t(t * L.bo->n + i)] += L.bo->data[i];
  add_residual(L.attn_post_norm, n);
}

void Session::Impl::ffn_block(const LayerWeights& L, int64_t n) {
  rmsnorm(x.data(), L.ffn_norm.data, n, c.n_embd, c.rms_eps, xn.data());
  if (c.is_moe())
    ffn_moe(L, n);
  else
    ffn_dense(L, n);
  add_residual(L.ffn_post_norm, n);
}

void Session::Impl::add_residual(const VectorView& post_norm, int64_t n) {
  const int64_t d = c.n_embd;
  if (c.post_norms) rmsnorm(proj.data(), post_norm.data, n, d, c.rms_eps, proj.data());
  for (int64_t i = 0; i < n * d; ++i) x[size_t(i)] += proj[size_t(i)];
}

void Session::Impl::gate_act_up(int64_t rows, int64_t width) {
  backend->gated_act(gate.data(), up.data(), rows, width);
}

void Session::Impl::ffn_dense(const LayerWeights& L, int64_t n) {
  matmul({{L.ffn_gate, gate.data()}, {L.ffn_up, up.data()}}, xn.data(), n);
  gate_act_up(n, c.n_ff);
  matmul(L.ffn_down, gate.data(), n, proj.data());
}

// --- public API ----------------------------------------------------------------------------

Session::Session(const Model& model, const SessionOptions& options)
    : impl_(std::make_unique<Impl>(model, options)) {}
Session::~Session() = default;

const Model& Session::model() const { return impl_->model; }
const SessionOptions& Session::options() const { return impl_->opt; }
void Session::set_observer(MatmulObserver* observer) { impl_->observer = observer; }
void Session::clear() { impl_->n_past = 0; }
void Session::set_micro_batch(int64_t rows) {
  Impl& s = *impl_;
  const int64_t r = rows <= 0 ? s.opt.n_ubatch : std::min(rows, s.opt.n_ubatch);
  s.micro_batch = s.backend->micro_batch(r, s.opt.n_ubatch);
}
int64_t Session::n_past() const { return impl_->n_past; }

void Session::decode(std::span<const int32_t> tokens, int64_t first_output, std::span<float> logits) {
  Impl& s = *impl_;
  const int64_t n = int64_t(tokens.size());
  const int64_t n_vocab = s.c.n_vocab;
  first_output = std::clamp<int64_t>(first_output, 0, n);
  if (s.n_past + n > s.opt.n_ctx)
    throw_error("context full: {} tokens in the cache + {} new exceed the context size {}", s.n_past,
                n, s.opt.n_ctx);
  if (int64_t(logits.size()) < (n - first_output) * n_vocab)
    throw_error("logits buffer holds {} floats, {} rows of {} needed", logits.size(),
                n - first_output, n_vocab);
  for (int64_t b = 0; b < n; b += s.micro_batch) {
    const int64_t m = std::min(s.micro_batch, n - b);
    const int64_t out_from = std::clamp<int64_t>(first_output - b, 0, m);
    float* out = logits.data() + std::max<int64_t>(0, b + out_from - first_output) * n_vocab;
    s.forward(tokens.data() + b, m, out_from, out);
  }
}

void Session::embed(std::span<const int32_t> tokens, std::span<float> x) {
  Impl& s = *impl_;
  const int64_t d = s.c.n_embd, n = int64_t(tokens.size());
  if (int64_t(x.size()) != n * d)
    throw_error("embed: {} floats for {} tokens of {}", x.size(), n, d);
  for (int64_t t = 0; t < n; ++t) {
    const int32_t id = tokens[size_t(t)];
    if (id < 0 || id >= s.c.n_vocab)
      throw_error("token id {} at position {} is outside the vocabulary (0..{})", id, t,
                  s.c.n_vocab - 1);
    kernels::dequantize_rows(s.w.token_embd, id, id + 1, x.data() + t * d);
  }
  if (s.c.embd_scale != 1.0f)
    for (float& v : x) v *= s.c.embd_scale;
}

void Session::forward_layer(int64_t il, std::span<float> x, std::string_view stop_at) {
  Impl& s = *impl_;
  const int64_t d = s.c.n_embd, n = int64_t(x.size()) / d;
  if (il < 0 || il >= s.c.n_layer) throw_error("layer {} out of range (0..{})", il, s.c.n_layer - 1);
  if (n * d != int64_t(x.size()) || n > s.opt.n_ctx)
    throw_error("forward_layer: {} floats are not rows of {} within the context size {}", x.size(),
                d, s.opt.n_ctx);
  const LayerWeights& L = s.w.layers[size_t(il)];
  if (!stop_at.empty() && n > s.micro_batch)
    throw_error("forward_layer: stopping at {} needs one micro-batch, {} rows > {}", stop_at, n,
                s.micro_batch);
  s.n_past = 0;
  s.stop_at = stop_at;
  struct Reset {
    Impl& s;
    ~Reset() {
      s.stop_at = {};
      s.n_past = 0;
    }
  } reset{s};
  for (int64_t b = 0; b < n; b += s.micro_batch) {
    const int64_t m = std::min(s.micro_batch, n - b);
    float* xb = x.data() + b * d;
    std::memcpy(s.x.data(), xb, size_t(m * d) * sizeof(float));
    s.compute_rope(s.n_past, m);
    try {
      s.attention_block(L, il, m);
      s.ffn_block(L, m);
    } catch (const Impl::Stop&) {
      return;
    }
    std::memcpy(xb, s.x.data(), size_t(m * d) * sizeof(float));
    s.n_past += m;
  }
}

bool Session::resume_layer(int64_t il, LayerStage from, std::span<float> x,
                           std::span<const float> in, std::string_view stop_at) {
  Impl& s = *impl_;
  const Config& c = s.c;
  const int64_t d = c.n_embd, n = int64_t(x.size()) / d;
  if (il < 0 || il >= c.n_layer) throw_error("layer {} out of range (0..{})", il, c.n_layer - 1);
  if (c.is_moe()) throw_error("resume_layer: layer {} is a MoE layer", il);
  if (n * d != int64_t(x.size()) || n > s.micro_batch)
    throw_error("resume_layer: {} floats are not rows of {} within one micro-batch of {}", x.size(),
                d, s.micro_batch);
  const int64_t width = from == LayerStage::kAttnOutput ? c.n_head * c.head_dim
                        : from == LayerStage::kFfnGate  ? d
                                                        : c.n_ff;
  if (int64_t(in.size()) != n * width)
    throw_error("resume_layer: {} input floats, {} rows of {} expected", in.size(), n, width);
  const LayerWeights& L = s.w.layers[size_t(il)];
  s.stop_at = stop_at;
  struct Reset {
    Impl& s;
    ~Reset() { s.stop_at = {}; }
  } reset{s};
  std::memcpy(s.x.data(), x.data(), x.size() * sizeof(float));
  try {
    switch (from) {
      case LayerStage::kAttnOutput:
        std::memcpy(s.attn.data(), in.data(), in.size() * sizeof(float));
        s.attn_output(L, n);
        s.ffn_block(L, n);
        break;
      case LayerStage::kFfnGate:
        std::memcpy(s.xn.data(), in.data(), in.size() * sizeof(float));
        s.ffn_dense(L, n);
        s.add_residual(L.ffn_post_norm, n);
        break;
      case LayerStage::kFfnDown:
        std::memcpy(s.gate.data(), in.data(), in.size() * sizeof(float));
        s.matmul(L.ffn_down, s.gate.data(), n, s.proj.data());
        s.add_residual(L.ffn_post_norm, n);
        break;
    }
  } catch (const Impl::Stop&) {
    std::memcpy(x.data(), s.x.data(), x.size() * sizeof(float));
    return true;
  }
  std::memcpy(x.data(), s.x.data(), x.size() * sizeof(float));
  return false;
}

void Session::output_input(std::span<const float> x, std::span<float> xn) {
  Impl& s = *impl_;
  const int64_t d = s.c.n_embd;
  if (x.size() != xn.size() || x.size() % size_t(d) != 0)
    throw_error("output_input: {} / {} floats are not rows of {}", x.size(), xn.size(), d);
  rmsnorm(x.data(), s.w.output_norm.data, int64_t(x.size()) / d, d, s.c.rms_eps, xn.data());
}

}  // namespace imq::model
