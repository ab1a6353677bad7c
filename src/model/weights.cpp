// Weight views of a llama-family model: every tensor checked for presence, shape and type.
#include "model/weights.h"

#include <vector>

#include "imq/gguf.h"

namespace imq::model {
namespace {

class Loader {
 public:
  Loader(const gguf::File& f, Model::Weights& w) : f_(f), w_(w) {}

  const gguf::TensorInfo* find(const std::string& name) const { return f_.find_tensor(name); }

  const gguf::TensorInfo& require(const std::string& name) const {
    const auto* t = f_.find_tensor(name);
    if (!t) throw_error("{}: missing tensor {}", f_.path(), name);
    return *t;
  }

  void check_shape(const gguf::TensorInfo& t, std::initializer_list<int64_t> want) const {
    int64_t ne[4] = {1, 1, 1, 1};
    size_t i = 0;
    for (int64_t v : want) ne[i++] = v;
    bool ok = true;
    for (int d = 0; d < 4; ++d) ok = ok && t.ne[d] == ne[d];
    if (!ok) {
      std::string got = fmt::format("{}", t.ne[0]), exp = fmt::format("{}", ne[0]);
      for (size_t d = 1; d < want.size() || (d < 4 && t.ne[d] != 1); ++d) {
        got += fmt::format(", {}", t.ne[d]);
        if (d < want.size()) exp += fmt::format(", {}", ne[d]);
      }
      throw_error("{}: tensor {} has shape [{}], expected [{}] from the hyperparameters", f_.path(),
                  t.name, got, exp);
    }
  }

  WeightView matrix(const std::string& name, std::initializer_list<int64_t> shape) const {
    return view(require(name), shape);
  }

  WeightView view(const gguf::TensorInfo& t, std::initializer_list<int64_t> shape) const {
    check_shape(t, shape);
    const quant::Codec* codec = quant::find_codec(t.type);
    if (!codec)
      throw_error("{}: tensor {} has type {}, which imq cannot dequantize", f_.path(), t.name,
                  ggml_type_display_name(t.type));
    return kernels::make_weight_view(t.name, *codec, t.ne[0], t.ne[1], t.ne[2],
                                     f_.tensor_data(t).data());
  }

  VectorView vector(const gguf::TensorInfo& t, int64_t n) {
    check_shape(t, {n});
    VectorView v;
    v.name = t.name;
    v.n = n;
    const uint8_t* p = f_.tensor_data(t).data();
    const quant::Codec* codec = quant::find_codec(t.type);
    if (!codec)
      throw_error("{}: tensor {} has type {}, which imq cannot read", f_.path(), t.name,
                  ggml_type_display_name(t.type));
    if (kernels::type_kernels(*codec).float_rows) {
      v.data = reinterpret_cast<const float*>(p);
    } else {
      w_.converted.emplace_back(size_t(n));
      codec->dequantize(p, w_.converted.back().data(), n);
      v.data = w_.converted.back().data();
    }
    return v;
  }
  VectorView vector(const std::string& name, int64_t n) { return vector(require(name), n); }

  std::optional<VectorView> optional_vector(const std::string& name, int64_t n) {
    if (const auto* t = find(name)) return vector(*t, n);
    return std::nullopt;
  }

 private:
  const gguf::File& f_;
  Model::Weights& w_;
};

}  // namespace

Model::Weights load_weights(const gguf::File& file, const Config& c) {
  Model::Weights w;
  w.converted.reserve(size_t(4 + 12 * c.n_layer));  // pointers into it must stay valid
  Loader L(file, w);
  const int64_t n_q = c.n_head * c.head_dim, n_kv = c.n_embd_kv();
  w.token_embd = L.matrix("token_embd.weight", {c.n_embd, c.n_vocab});
  w.output_norm = L.vector("output_norm.weight", c.n_embd);
  w.output = c.tied_output ? w.token_embd : L.matrix("output.weight", {c.n_embd, c.n_vocab});
  w.rope_freqs = L.optional_vector("rope_freqs.weight", c.n_rot / 2);
  for (int64_t il = 0; il < c.n_layer; ++il) {
    const std::string p = fmt::format("blk.{}.", il);
    LayerWeights l;
    l.attn_norm = L.vector(p + "attn_norm.weight", c.n_embd);
    l.wq = L.matrix(p + "attn_q.weight", {c.n_embd, n_q});
    l.wk = L.matrix(p + "attn_k.weight", {c.n_embd, n_kv});
    l.wv = L.matrix(p + "attn_v.weight", {c.n_embd, n_kv});
    l.wo = L.matrix(p + "attn_output.weight", {n_q, c.n_embd});
    l.bq = L.optional_vector(p + "attn_q.bias", n_q);
    l.bk = L.optional_vector(p + "attn_k.bias", n_kv);
    l.bv = L.optional_vector(p + "attn_v.bias", n_kv);
    l.bo = L.optional_vector(p + "attn_output.bias", c.n_embd);
    if (c.qk_norm) {
      l.attn_q_norm = L.vector(p + "attn_q_norm.weight", c.head_dim);
      l.attn_k_norm = L.vector(p + "attn_k_norm.weight", c.head_dim);
    }
    l.ffn_norm = L.vector(p + "ffn_norm.weight", c.n_embd);
    if (c.post_norms) {
      l.attn_post_norm = L.vector(p + "post_attention_norm.weight", c.n_embd);
      l.ffn_post_norm = L.vector(p + "post_ffw_norm.weight", c.n_embd);
    }
    if (c.is_moe()) {
      const int64_t ne = c.n_expert, nf = c.n_ff_exp;
      l.ffn_gate_inp = L.matrix(p + "ffn_gate_inp.weight", {c.n_embd, ne});
      l.ffn_gate_exps = L.matrix(p + "ffn_gate_exps.weight", {c.n_embd, nf, ne});
      l.ffn_up_exps = L.matrix(p + "ffn_up_exps.weight", {c.n_embd, nf, ne});
      l.ffn_down_exps = L.matrix(p + "ffn_down_exps.weight", {nf, c.n_embd, ne});
    } else {
      l.ffn_gate = L.matrix(p + "ffn_gate.weight", {c.n_embd, c.n_ff});
      l.ffn_up = L.matrix(p + "ffn_up.weight", {c.n_embd, c.n_ff});
      l.ffn_down = L.matrix(p + "ffn_down.weight", {c.n_ff, c.n_embd});
    }
    w.layers.push_back(std::move(l));
  }
  return w;
}

}  // namespace imq::model
