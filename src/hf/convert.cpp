// HF folder -> GGUF, as llama.cpp's convert_hf_to_gguf.py does for llama, Mixtral, qwen2,
// qwen3, qwen3moe and gemma3:
// - tensors in the order the converter meets them (Checkpoint::ordered), renamed to GGUF names
//   (tensor_map.h); a layer's experts are stacked once the last one is seen;
// - llama/Mixtral: attn_q / attn_k rows permuted from HF's rotate-half order back to llama's
//   interleaved pairs: within each head of R rows, new row 2i + j is old row j * R/2 + i;
// - gemma3: 1 added to every norm weight, in float32 (BF16 tensors are widened first, F16 ones
//   stay F16 as torch keeps them);
// - 1-D tensors, *_norm.weight and the MoE router (ffn_gate_inp) stay F32, the rest take the
//   out type; F32 -> F16 rounds to nearest even (numpy's astype), F32 -> BF16 likewise with
//   NaNs quieted (gguf-py's rule);
// - the metadata keys in the converter's order (metadata.h, tokenizer.h).
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>

#include "core/atomic_file.h"
#include "core/fp16.h"
#include "hf/config.h"
#include "hf/metadata.h"
#include "hf/safetensors.h"
#include "hf/tensor_map.h"
#include "hf/tokenizer.h"
#include "imq/error.h"
#include "imq/hf.h"

namespace imq::hf {

namespace {

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

// Gemma's +1 on a norm weight, where torch computes it: in float32 for F32/BF16 tensors (BF16
// is widened first), in float16 for F16 ones.
void add_one(std::span<const uint8_t> src, Dtype d, std::vector<uint8_t>& f32_out) {
  const size_t es = dtype_size(d), n = src.size() / es;
  f32_out.resize(n * 4);
  for (size_t i = 0; i < n; ++i) {
    float x = load_elem(src.data() + i * es, d) + 1.0f;
    if (d == Dtype::F16) x = f16_to_f32(f32_to_f16_numpy(x));
    std::memcpy(f32_out.data() + i * 4, &x, 4);
  }
}

// Converts every tensor of the checkpoint, in the converter's order.
std::vector<OutTensor> convert_tensors(const Checkpoint& ck, const HfConfig& c, GgmlType outtype,
                                       const std::string& dir) {
  // Each layer needs its attention and norms plus its FFN (3, or the router and 3 per expert):
  // a count past what the files hold is refused before anything is sized by it.
  const uint64_t per_layer = 6 + (c.is_moe() ? 1 + 3 * uint64_t(c.n_expert) : 3);
  if (uint64_t(c.n_layer) * per_layer > ck.ordered.size())
    throw_error("{}: num_hidden_layers {}{} needs at least {} tensors, the safetensors files hold {}", c.path,
                c.n_layer, c.is_moe() ? fmt::format(" with {} experts", c.n_expert) : "",
                uint64_t(c.n_layer) * per_layer, ck.ordered.size());
  std::vector<OutTensor> out;
  // Experts waiting to be stacked: per layer, [slot][expert].
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
    const auto m = map_tensor(t.name, c);
    if (!m) {
      if (const std::string why = index_past_config(t.name, c); !why.empty())
        throw_error("{}: tensor {}: {}", path, t.name, why);
      throw_error("{}: tensor {} has no GGUF name for {}", path, t.name, c.architecture);
    }
    if (t.shape != m->expect)
      throw_error("{}: tensor {} has shape {}, but {} implies {}", path, t.name, shape_str(t.shape), c.path,
                  shape_str(m->expect));
    if (present.count(m->gguf))
      throw_error("{}: tensor {} is a second source of {}", path, t.name, m->gguf);
    if (m->kind == TensorKind::Expert) {
      auto& slots = experts[m->layer];
      if (slots.empty()) slots.assign(3, std::vector<const Checkpoint::Ref*>(size_t(c.n_expert), nullptr));
      slots[size_t(m->slot)][size_t(m->expert)] = &ref;
      if (++expert_seen[m->layer] < 3 * c.n_expert) continue;
      const auto names = expert_stack_names(c);
      for (size_t w = 0; w < 3; ++w) {
        OutTensor o;
        const StTensor& first = *slots[w][0]->tensor;
        o.name = "blk." + std::to_string(m->layer) + "." + names[w];
        o.shape = {c.n_expert, first.shape[0], first.shape[1]};
        o.type = tensor_type(o.name, 3, outtype);
        const size_t per = size_t(first.n_elements()) * out_size(o.type);
        o.data.resize(per * size_t(c.n_expert));
        for (int64_t e = 0; e < c.n_expert; ++e) {
          const Checkpoint::Ref& r = *slots[w][size_t(e)];
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
    if (m->norm_shift) {
      std::vector<uint8_t> shifted;
      add_one(ck.data(ref), t.dtype, shifted);
      convert_elems(shifted, Dtype::F32, o.type, o.data.data());
    } else {
      convert_elems(ck.data(ref), t.dtype, o.type, o.data.data());
    }
    if (m->kind == TensorKind::PermuteQ || m->kind == TensorKind::PermuteK)
      permute_rows(o.data, t.shape[0], t.shape[1], m->kind == TensorKind::PermuteQ ? c.n_head : c.n_head_kv,
                   out_size(o.type));
    present[o.name] = true;
    out.push_back(std::move(o));
  }
  for (const auto& n : required_tensors(c))
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

  std::vector<TensorSummary> summary;
  for (const auto& t : tensors) summary.push_back({t.name, t.shape});
  gguf::Writer w;
  write_metadata(w, c, dir, outtype, summary, vocab);
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
