// HF folder -> GGUF, as llama.cpp's convert_hf_to_gguf.py does for llama and Mixtral:
// - tensors in the order the converter meets them (Checkpoint::ordered), renamed to GGUF names;
//   a layer's experts are stacked into ffn_{gate,down,up}_exps once the last one is seen;
// - attn_q / attn_k rows permuted from HF's rotate-half order back to llama's interleaved
//   pairs: within each head of R rows, new row 2i + j is old row j * R/2 + i;
// - 1-D tensors, *_norm.weight and the MoE router (ffn_gate_inp) stay F32, the rest take the
//   out type; F32 -> F16 rounds to nearest even (numpy's astype), F32 -> BF16 likewise with
//   NaNs quieted (gguf-py's rule);
// - the metadata keys in the converter's order (tokenizer.h for the tokenizer.* keys).
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>

#include "core/atomic_file.h"
#include "core/fp16.h"
#include "hf/config.h"
#include "hf/safetensors.h"
#include "hf/tokenizer.h"
#include "imq/error.h"
#include "imq/hf.h"

namespace imq::hf {

namespace {

using gguf::Value;
using gguf::ValueType;

float load_elem(const uint8_t* p, Dtype d) {
  if (d == Dtype::F32) {
    float f;
    std::memcpy(&f, p, 4);
    return f;
  }
  uint16_t h;
  std::memcpy(&h, p, 2);
  return d == Dtype::F16 ? f16_to_f32(h) : bf16_to_f32(h);
}

// numpy's float32 -> float16: round to nearest even, NaN payload kept (its top mantissa bits).
uint16_t f32_to_f16_numpy(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7fffffff) > 0x7f800000u) {
    uint32_t m = (x & 0x7fffff) >> 13;
    if (m == 0) m = 1;
    return uint16_t(((x >> 16) & 0x8000) | 0x7c00 | m);
  }
  return f32_to_f16(f);
}

size_t out_size(GgmlType t) { return t == GgmlType::F32 ? 4 : 2; }

void store_elem(uint8_t* p, float f, GgmlType t) {
  if (t == GgmlType::F32) {
    std::memcpy(p, &f, 4);
  } else {
    const uint16_t h = t == GgmlType::F16 ? f32_to_f16_numpy(f) : f32_to_bf16(f);
    std::memcpy(p, &h, 2);
  }
}

// Converts `src` (n elements of `d`) into `dst` as `t`. F16 -> F16 keeps the bits (the
// converter never widens an F16 tensor it writes as F16).
void convert_elems(std::span<const uint8_t> src, Dtype d, GgmlType t, uint8_t* dst) {
  const size_t es = dtype_size(d), n = src.size() / es;
  if ((d == Dtype::F16 && t == GgmlType::F16) || (d == Dtype::F32 && t == GgmlType::F32)) {
    std::memcpy(dst, src.data(), src.size());
    return;
  }
  const size_t os = out_size(t);
  for (size_t i = 0; i < n; ++i) store_elem(dst + i * os, load_elem(src.data() + i * es, d), t);
}

// One GGUF tensor being assembled.
struct OutTensor {
  std::string name;
  std::vector<int64_t> shape;  // PyTorch order (outermost first)
  std::vector<uint8_t> data;
  GgmlType type = GgmlType::F32;
};

enum class Kind { Plain, PermuteQ, PermuteK, Expert };

struct Mapped {
  std::string gguf;             // GGUF name ("" for skipped tensors)
  std::vector<int64_t> expect;  // expected HF shape
  Kind kind = Kind::Plain;
  int64_t layer = -1, expert = -1, w = -1;  // experts: layer, index, w1/w2/w3 -> 0/1/2
};

bool parse_index(std::string_view& s, int64_t& out) {
  size_t n = 0;
  out = 0;
  while (n < s.size() && n < 9 && s[n] >= '0' && s[n] <= '9') out = out * 10 + (s[n++] - '0');
  if (n == 0 || n >= s.size() || s[n] != '.' || (n > 1 && s[0] == '0')) return false;
  s.remove_prefix(n + 1);
  return true;
}

// HF name -> GGUF name and expected shape; nullopt for names the converter does not know.
std::optional<Mapped> map_name(const std::string& name, const HfConfig& c) {
  const int64_t H = c.hidden_size, q = c.n_head * c.head_dim, kv = c.n_head_kv * c.head_dim;
  const int64_t ff = c.intermediate_size;
  if (name == "model.embed_tokens.weight") return Mapped{"token_embd.weight", {c.vocab_size, H}};
  if (name == "model.norm.weight") return Mapped{"output_norm.weight", {H}};
  if (name == "lm_head.weight") return Mapped{"output.weight", {c.vocab_size, H}};
  std::string_view s = name;
  const std::string_view pre = "model.layers.";
  if (s.substr(0, pre.size()) != pre) return std::nullopt;
  s.remove_prefix(pre.size());
  int64_t il = 0;
  if (!parse_index(s, il) || il >= c.n_layer) return std::nullopt;
  const std::string blk = "blk." + std::to_string(il) + ".";
  static const std::map<std::string_view, std::pair<const char*, int>> dense = {
      {"input_layernorm.weight", {"attn_norm.weight", 0}},
      {"post_attention_layernorm.weight", {"ffn_norm.weight", 0}},
      {"self_attn.q_proj.weight", {"attn_q.weight", 1}},
      {"self_attn.k_proj.weight", {"attn_k.weight", 2}},
      {"self_attn.v_proj.weight", {"attn_v.weight", 3}},
      {"self_attn.o_proj.weight", {"attn_output.weight", 4}},
      {"mlp.gate_proj.weight", {"ffn_gate.weight", 5}},
      {"mlp.up_proj.weight", {"ffn_up.weight", 6}},
      {"mlp.down_proj.weight", {"ffn_down.weight", 7}},
      {"block_sparse_moe.gate.weight", {"ffn_gate_inp.weight", 8}},
  };
  if (auto it = dense.find(s); it != dense.end()) {
    const int k = it->second.second;
    if (c.is_moe() ? (k >= 5 && k <= 7) : k == 8) return std::nullopt;
    Mapped m{blk + it->second.first, {}};
    switch (k) {
      case 0: m.expect = {H}; break;
      case 1: m.expect = {q, H}; m.kind = Kind::PermuteQ; break;
      case 2: m.expect = {kv, H}; m.kind = Kind::PermuteK; break;
      case 3: m.expect = {kv, H}; break;
      case 4: m.expect = {H, q}; break;
      case 5: case 6: m.expect = {ff, H}; break;
      case 7: m.expect = {H, ff}; break;
      default: m.expect = {c.n_expert, H}; break;
    }
    return m;
  }
  const std::string_view ex = "block_sparse_moe.experts.";
  if (!c.is_moe() || s.substr(0, ex.size()) != ex) return std::nullopt;
  s.remove_prefix(ex.size());
  int64_t e = 0;
  if (!parse_index(s, e) || e >= c.n_expert) return std::nullopt;
  static const char* const kExps[] = {"ffn_gate_exps.weight", "ffn_down_exps.weight", "ffn_up_exps.weight"};
  for (int w = 0; w < 3; ++w)
    if (s == std::string("w") + char('1' + w) + ".weight") {
      Mapped m{blk + kExps[w], w == 1 ? std::vector<int64_t>{H, ff} : std::vector<int64_t>{ff, H}, Kind::Expert};
      m.layer = il;
      m.expert = e;
      m.w = w;
      return m;
    }
  return std::nullopt;
}

// Why a llama-like name is unknown when its layer or expert index is past config.json's
// counts ("" otherwise).
std::string index_past_config(std::string_view s, const HfConfig& c) {
  int64_t il = 0, e = 0;
  if (!s.starts_with("model.layers.")) return "";
  s.remove_prefix(13);
  if (!parse_index(s, il)) return "";
  if (il >= c.n_layer) return fmt::format("layer {} is past {}'s num_hidden_layers {}", il, c.path, c.n_layer);
  if (!c.is_moe() || !s.starts_with("block_sparse_moe.experts.")) return "";
  s.remove_prefix(25);
  if (parse_index(s, e) && e >= c.n_expert)
    return fmt::format("expert {} is past {}'s num_local_experts {}", e, c.path, c.n_expert);
  return "";
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

// The converter's rule for which tensors keep F32 whatever the out type.
GgmlType tensor_type(const std::string& gguf_name, size_t n_dims, GgmlType outtype) {
  auto ends = [&](std::string_view suf) {
    return gguf_name.size() >= suf.size() && gguf_name.compare(gguf_name.size() - suf.size(), suf.size(), suf) == 0;
  };
  if (n_dims <= 1 || ends("_norm.weight") || ends("ffn_gate_inp.weight") || !ends(".weight")) return GgmlType::F32;
  return outtype;
}

// Rows of a [rows, cols] tensor (already converted, `es` bytes per element) permuted per head.
void permute_rows(std::vector<uint8_t>& data, int64_t rows, int64_t cols, int64_t n_head, size_t es) {
  const int64_t R = rows / n_head, half = R / 2;
  const size_t row_bytes = size_t(cols) * es;
  std::vector<uint8_t> out(data.size());
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t h = r / R, i = (r % R) / 2, j = r % 2;
    const int64_t src = h * R + j * half + i;
    std::memcpy(out.data() + size_t(r) * row_bytes, data.data() + size_t(src) * row_bytes, row_bytes);
  }
  data.swap(out);
}

// gguf-py's parameter-count label: "5.2M", or "4x3.3M" for experts (shared + one expert).
std::string size_label(uint64_t n) {
  double scaled;
  const char* suffix;
  if (n > 1e12) scaled = double(n) * 1e-12, suffix = "T";
  else if (n > 1e9) scaled = double(n) * 1e-9, suffix = "B";
  else if (n > 1e6) scaled = double(n) * 1e-6, suffix = "M";
  else scaled = double(n) * 1e-3, suffix = "K";
  const int digits = int(std::to_string(int64_t(std::nearbyint(scaled))).size());
  return fmt::format("{:.{}f}{}", scaled, std::max(2 - digits, 0), suffix);
}

// "dense-spm4k" -> "Dense Spm4K": words capitalised, a size suffix after a digit upper-cased.
std::string model_name(const std::string& dir) {
  std::string base = std::filesystem::path(dir).lexically_normal().filename().string();
  if (base.empty()) base = std::filesystem::path(dir).lexically_normal().parent_path().filename().string();
  std::string out;
  bool start = true;
  for (size_t i = 0; i < base.size(); ++i) {
    char ch = base[i];
    if (ch == '-' || ch == '_') {
      out += ' ';
      start = true;
      continue;
    }
    const bool end = i + 1 == base.size() || base[i + 1] == '-' || base[i + 1] == '_';
    if (start || (end && i > 0 && std::isdigit(static_cast<unsigned char>(base[i - 1])) &&
                  (ch == 'k' || ch == 'm' || ch == 'b')))
      ch = char(std::toupper(static_cast<unsigned char>(ch)));
    out += ch;
    start = false;
  }
  return out;
}

GgmlType resolve(OutType o, Dtype first) {
  switch (o) {
    case OutType::F32: return GgmlType::F32;
    case OutType::F16: return GgmlType::F16;
    case OutType::BF16: return GgmlType::BF16;
    case OutType::Auto: return first == Dtype::F16 ? GgmlType::F16 : GgmlType::BF16;
    case OutType::Lossless: break;
  }
  return first == Dtype::F32 ? GgmlType::F32 : first == Dtype::F16 ? GgmlType::F16 : GgmlType::BF16;
}

uint32_t file_type(GgmlType t) { return t == GgmlType::F32 ? 0 : t == GgmlType::F16 ? 1 : 32; }

// Converts every tensor of the checkpoint, in the converter's order.
std::vector<OutTensor> convert_tensors(const Checkpoint& ck, const HfConfig& c, GgmlType outtype,
                                       const std::string& dir) {
  // Each layer needs 6 tensors plus its FFN (3, or the router and 3 per expert): a count past
  // what the files hold is refused before anything is sized by it.
  const uint64_t per_layer = 6 + (c.is_moe() ? 1 + 3 * uint64_t(c.n_expert) : 3);
  if (uint64_t(c.n_layer) * per_layer > ck.ordered.size())
    throw_error("{}: num_hidden_layers {}{} needs at least {} tensors, the safetensors files hold {}", c.path,
                c.n_layer, c.is_moe() ? fmt::format(" with {} experts", c.n_expert) : "",
                uint64_t(c.n_layer) * per_layer, ck.ordered.size());
  std::vector<OutTensor> out;
  // Experts waiting to be stacked: per layer, [w][expert].
  std::map<int64_t, std::vector<std::vector<const Checkpoint::Ref*>>> experts;
  std::map<int64_t, int64_t> expert_seen;
  std::map<std::string, bool> present;
  for (const auto& ref : ck.ordered) {
    const StTensor& t = *ref.tensor;
    const std::string& path = ck.path(ref);
    const std::string_view nm = t.name;
    if (nm.ends_with(".rotary_emb.inv_freq") || nm.ends_with(".attention.masked_bias") ||
        nm.ends_with(".attention.bias"))
      continue;
    const auto m = map_name(t.name, c);
    if (!m) {
      if (const std::string why = index_past_config(t.name, c); !why.empty())
        throw_error("{}: tensor {}: {}", path, t.name, why);
      throw_error("{}: tensor {} has no GGUF name for {}", path, t.name, c.architecture);
    }
    if (t.shape != m->expect)
      throw_error("{}: tensor {} has shape {}, but {} implies {}", path, t.name, shape_str(t.shape), c.path,
                  shape_str(m->expect));
    if (m->kind == Kind::Expert) {
      auto& slots = experts[m->layer];
      if (slots.empty()) slots.assign(3, std::vector<const Checkpoint::Ref*>(size_t(c.n_expert), nullptr));
      slots[size_t(m->w)][size_t(m->expert)] = &ref;
      if (++expert_seen[m->layer] < 3 * c.n_expert) continue;
      for (int w = 0; w < 3; ++w) {
        OutTensor o;
        const StTensor& first = *slots[size_t(w)][0]->tensor;
        o.name = "blk." + std::to_string(m->layer) + "." +
                 (w == 0 ? "ffn_gate_exps.weight" : w == 1 ? "ffn_down_exps.weight" : "ffn_up_exps.weight");
        o.shape = {c.n_expert, first.shape[0], first.shape[1]};
        o.type = tensor_type(o.name, 3, outtype);
        const size_t per = size_t(first.n_elements()) * out_size(o.type);
        o.data.resize(per * size_t(c.n_expert));
        for (int64_t e = 0; e < c.n_expert; ++e) {
          const Checkpoint::Ref& r = *slots[size_t(w)][size_t(e)];
          convert_elems(ck.data(r), r.tensor->dtype, o.type, o.data.data() + per * size_t(e));
        }
        present[o.name] = true;
        out.push_back(std::move(o));
      }
      continue;
    }
    OutTensor o;
    o.name = m->gguf;
    o.shape = t.shape;
    size_t n_dims = 0;
    for (int64_t d : t.shape) n_dims += d != 1;
    o.type = tensor_type(o.name, n_dims, outtype);
    o.data.resize(size_t(t.n_elements()) * out_size(o.type));
    convert_elems(ck.data(ref), t.dtype, o.type, o.data.data());
    if (m->kind == Kind::PermuteQ || m->kind == Kind::PermuteK)
      permute_rows(o.data, t.shape[0], t.shape[1], m->kind == Kind::PermuteQ ? c.n_head : c.n_head_kv,
                   out_size(o.type));
    present[o.name] = true;
    out.push_back(std::move(o));
  }
  // Everything the model needs must be there (the output projection may be tied).
  std::vector<std::string> need = {"token_embd.weight", "output_norm.weight"};
  for (int64_t il = 0; il < c.n_layer; ++il) {
    const std::string b = "blk." + std::to_string(il) + ".";
    for (const char* n : {"attn_norm", "ffn_norm", "attn_q", "attn_k", "attn_v", "attn_output"})
      need.push_back(b + n + ".weight");
    if (c.is_moe()) {
      for (const char* n : {"ffn_gate_inp", "ffn_gate_exps", "ffn_down_exps", "ffn_up_exps"})
        need.push_back(b + n + ".weight");
    } else {
      for (const char* n : {"ffn_gate", "ffn_up", "ffn_down"}) need.push_back(b + n + ".weight");
    }
  }
  for (const auto& n : need)
    if (!present.count(n))
      throw_error("{}: the safetensors files lack the tensor that becomes {} ({} with {} layers{})", dir, n,
                  c.architecture, c.n_layer, c.is_moe() ? fmt::format(", {} experts", c.n_expert) : "");
  return out;
}

gguf::Writer build(const std::string& dir, const ConvertOptions& options, std::vector<OutTensor>& tensors) {
  const HfConfig c = read_config(dir);
  const Checkpoint ck = Checkpoint::open_dir(dir);
  if (ck.ordered.empty()) throw_error("{}: the safetensors files hold no tensors", dir);
  const GgmlType outtype = resolve(options.outtype, ck.ordered.front().tensor->dtype);
  // Tensors first: their shapes bound config.json's sizes (vocab_size rows must exist in the
  // file) before the vocabulary is sized from them.
  tensors = convert_tensors(ck, c, outtype, dir);
  const HfVocab vocab = read_vocab(dir, c);

  uint64_t total = 0, shared = 0, expert = 0;
  for (const auto& t : tensors) {
    uint64_t n = 1;
    for (int64_t d : t.shape) n *= uint64_t(d);
    total += n;
    if (t.name.find("_exps.") != std::string::npos) expert += n / uint64_t(t.shape[0]);
    else shared += n;
  }
  (void)total;

  gguf::Writer w;
  w.set("general.architecture", Value::str("llama"));
  w.set("general.type", Value::str("model"));
  w.set("general.name", Value::str(model_name(dir)));
  w.set("general.size_label", Value::str(c.is_moe() ? fmt::format("{}x{}", c.n_expert, size_label(shared + expert))
                                                    : size_label(shared)));
  w.set("llama.block_count", Value::u32(uint32_t(c.n_layer)));
  if (c.n_ctx) w.set("llama.context_length", Value::u32(uint32_t(*c.n_ctx)));
  w.set("llama.embedding_length", Value::u32(uint32_t(c.hidden_size)));
  w.set("llama.feed_forward_length", Value::u32(uint32_t(c.intermediate_size)));
  w.set("llama.attention.head_count", Value::u32(uint32_t(c.n_head)));
  w.set("llama.attention.head_count_kv", Value::u32(uint32_t(c.n_head_kv)));
  if (c.rope_theta) w.set("llama.rope.freq_base", Value::f32(float(*c.rope_theta)));
  if (c.rms_eps) w.set("llama.attention.layer_norm_rms_epsilon", Value::f32(float(*c.rms_eps)));
  if (c.is_moe()) {
    w.set("llama.expert_count", Value::u32(uint32_t(c.n_expert)));
    w.set("llama.expert_used_count", Value::u32(uint32_t(c.n_expert_used)));
  }
  if (c.has_head_dim) {
    w.set("llama.attention.key_length", Value::u32(uint32_t(c.head_dim)));
    w.set("llama.attention.value_length", Value::u32(uint32_t(c.head_dim)));
  }
  w.set("general.file_type", Value::u32(file_type(outtype)));
  w.set("llama.vocab_size", Value::u32(uint32_t(c.vocab_size)));
  w.set("llama.rope.dimension_count", Value::u32(uint32_t(c.head_dim)));
  if (c.rope_scaling_type) {
    w.set("llama.rope.scaling.type", Value::str(*c.rope_scaling_type));
    w.set("llama.rope.scaling.factor", Value::f32(float(c.rope_scaling_factor)));
  }
  w.set("general.quantization_version", Value::u32(2));
  w.set("tokenizer.ggml.model", Value::str("llama"));
  w.set("tokenizer.ggml.pre", Value::str("default"));
  w.set("tokenizer.ggml.tokens", Value::string_array(vocab.tokens));
  std::vector<Value> scores, types;
  for (float s : vocab.scores) scores.push_back(Value::f32(s));
  for (int32_t t : vocab.types) types.push_back(Value::i32(t));
  w.set("tokenizer.ggml.scores", Value::array(ValueType::FLOAT32, std::move(scores)));
  w.set("tokenizer.ggml.token_type", Value::array(ValueType::INT32, std::move(types)));
  for (const auto& [typ, id] : vocab.special_ids) w.set("tokenizer.ggml." + typ + "_token_id", Value::u32(id));
  for (const auto& [typ, add] : vocab.add_special) w.set("tokenizer.ggml.add_" + typ + "_token", Value::boolean(add));
  if (vocab.chat_template) w.set("tokenizer.chat_template", Value::str(*vocab.chat_template));

  for (auto& t : tensors) {
    std::vector<int64_t> ne;  // GGUF order, size-1 dimensions dropped (the converter squeezes)
    for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it)
      if (*it != 1) ne.push_back(*it);
    if (ne.empty()) ne.push_back(1);
    w.add_tensor_view(t.name, t.type, ne, t.data);
  }
  return w;
}

}  // namespace

OutType parse_outtype(std::string_view s) {
  if (s == "f32") return OutType::F32;
  if (s == "f16") return OutType::F16;
  if (s == "bf16") return OutType::BF16;
  if (s == "auto") return OutType::Auto;
  throw_error("--outtype {}: expected f32, f16, bf16 or auto", s);
}

bool is_model_dir(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_directory(path, ec);
}

std::vector<uint8_t> convert_to_memory(const std::string& dir, const ConvertOptions& options) {
  std::vector<OutTensor> tensors;
  return build(dir, options, tensors).to_bytes();
}

void convert(const std::string& dir, const std::string& out_path, const ConvertOptions& options) {
  std::vector<OutTensor> tensors;
  build(dir, options, tensors).write(out_path);
}

gguf::File open_model_file(const std::string& path, const gguf::OpenOptions& options) {
  if (!is_model_dir(path)) return gguf::File::open(path, options);
  std::error_code ec;
  if (!std::filesystem::exists(std::filesystem::path(path) / "config.json", ec))
    throw_error("{}: not a regular file (a GGUF model) nor an HF model folder (no config.json)", path);
  return gguf::File::from_memory(path, convert_to_memory(path, ConvertOptions{OutType::Lossless}));
}

}  // namespace imq::hf
