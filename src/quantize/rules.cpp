#include "quantize/rules.h"

#include <algorithm>
#include <charconv>

#include "imq/error.h"
#include "imq/ggml_types.h"

namespace imq::quantize {

namespace {

using G = GgmlType;

uint32_t block_size(GgmlType type) {
  auto info = ggml_type_info(type);
  if (!info) throw_error("unknown tensor type id {}", uint32_t(type));
  return info->block_size;
}

bool contains(std::string_view s, std::string_view sub) { return s.find(sub) != std::string_view::npos; }

// Layers 0..n/8-1, the last eighth and every third layer in between get more bits.
bool use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

int first_int(const gguf::File& f, const std::string& key, int fallback) {
  const gguf::Value* v = f.find(key);
  if (!v) return fallback;
  try {
    if (v->type == gguf::ValueType::ARRAY) {
      const auto& a = v->as_array();
      return a.items.empty() ? fallback : int(a.items[0].as_int());
    }
    return int(v->as_int());
  } catch (const Error& e) {
    throw_error("{}: key {}: {}", f.path(), key, e.what());
  }
}

// sscanf("blk.%d.") as llama.cpp uses it to read a tensor's block number.
std::optional<int> block_of(std::string_view name) {
  if (!name.starts_with("blk.")) return std::nullopt;
  name.remove_prefix(4);
  int v = 0;
  auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), v);
  if (ec != std::errc()) return std::nullopt;
  return v;
}

// Which rule family a tensor belongs to, by name (checked in this order).
enum class Category { kOutput, kTokenEmbd, kAttnV, kAttnK, kAttnQ, kAttnOutput, kFfnUp, kFfnGate, kFfnDown, kOther };

Category categorize(const ModelInfo& m, std::string_view name) {
  if (name == "output.weight" || (!m.has_output && name == "token_embd.weight")) return Category::kOutput;
  if (name == "token_embd.weight" || name == "per_layer_token_embd.weight") return Category::kTokenEmbd;
  // attn_qkv and attn_kv_b follow the attn_v rules.
  if (contains(name, "attn_qkv.weight") || contains(name, "attn_kv_b.weight") ||
      contains(name, "attn_v.weight"))
    return Category::kAttnV;
  if (contains(name, "attn_k.weight")) return Category::kAttnK;
  if (contains(name, "attn_q.weight")) return Category::kAttnQ;
  if (contains(name, "attn_output.weight")) return Category::kAttnOutput;
  if (contains(name, "ffn_up")) return Category::kFfnUp;
  if (contains(name, "ffn_gate")) return Category::kFfnGate;
  if (contains(name, "ffn_down")) return Category::kFfnDown;
  return Category::kOther;
}

// Layer index of an ffn tensor: the running counter for dense models, the block number from
// the name for MoE models (their expert tensors need not be consecutive).
int ffn_layer(const ModelInfo& m, int counter, std::string_view name) {
  if (m.n_expert <= 1) return counter;
  auto b = block_of(name);
  if (!b) throw_error("tensor {}: cannot determine its layer (expected blk.N.)", name);
  if (*b < 0 || *b >= m.n_layer)
    throw_error("tensor {}: layer {} is outside [0, {})", name, *b, m.n_layer);
  return *b;
}

// The IQ1/IQ2 file types have their own rules for attn_v, attn_k, ffn_down and attn_output.
bool very_low_bit(FType ft) {
  switch (ft) {
    case FType::IQ2_XXS: case FType::IQ2_XS: case FType::IQ2_S: case FType::IQ2_M:
    case FType::IQ1_S: case FType::IQ1_M: return true;
    default: return false;
  }
}

GgmlType very_low_bit_type(const ModelInfo& m, MixState& st, FType ft, Category cat, GgmlType t) {
  const bool s_or_m = ft == FType::IQ2_S || ft == FType::IQ2_M;
  switch (cat) {
    case Category::kAttnV:
      ++st.i_attention_wv;
      if (m.n_gqa() >= 4 || m.n_expert >= 4) return G::Q4_K;
      return s_or_m ? G::IQ3_S : G::Q2_K;
    case Category::kAttnK: return m.n_expert == 8 ? G::Q4_K : t;
    case Category::kFfnDown:  // the first eighth of the ffn_down tensors, by count
      return st.i_ffn_down++ < m.n_layer / 8 ? (s_or_m ? G::IQ3_S : G::Q2_K) : t;
    case Category::kAttnOutput:
      if (m.n_expert == 8) return G::Q5_K;
      if (ft == FType::IQ1_S || ft == FType::IQ1_M) return G::IQ2_XXS;
      return s_or_m ? G::IQ3_S : t;
    default: return t;
  }
}

GgmlType token_embd_type(FType ft, GgmlType t) {
  switch (ft) {
    case FType::IQ2_XXS: case FType::IQ2_XS: case FType::IQ1_S: case FType::IQ1_M: return G::Q2_K;
    case FType::IQ2_S: case FType::IQ2_M: case FType::IQ3_XXS: return G::IQ3_S;
    default: return t;
  }
}

// Q3_HIFI_M's FFN zones (the note at mix_type), f = max(1, n/8): the first f layers get
// ffn_gate and ffn_up Q4_K and ffn_down Q5_K (3.125 bpw over Q3_K_M per FFN matrix size),
// paid for by ffn_down Q3_K (1.0625 bpw under) in the next 3f layers; with n >= 6f the last f
// layers get ffn_gate and ffn_up Q4_K too (2.125 more), paid by 2f more ffn_down Q3_K layers.
// Fewer than 4 layers cannot pay: Q3_K_M's FFN types then.
struct HifiZones {
  int first = 0;       // layers [0, first) up
  int q3k_end = 0;     // layers [first, q3k_end): ffn_down Q3_K
  int last_begin = 0;  // layers [last_begin, n): ffn_gate, ffn_up Q4_K (n: none)
};
HifiZones hifi_zones(const ModelInfo& m) {
  const int n = m.n_layer;
  if (n < 4 || m.is_falcon()) return {0, 0, n};
  const int f = std::max(1, n / 8);
  if (6 * f <= n) return {f, 6 * f, n - f};
  return {f, std::min(n, 4 * f), n};
}

// Q3_HIFI_M's attention: Q3_HIFI for attn_q, attn_v and attn_output on MoE models, where these
// outliers paid most (bench/README.md). attn_q goes up 0.75 bpw, attn_output and attn_v down
// 0.31 or more: with attn_v at least half of attn_q (n_head_kv >= n_head / 2) the rest is paid
// by the FFN zones' margin (tests/quantize: Rules.Q3HifiMWithinQ3KMBytes); with fewer KV heads,
// fewer than 4 layers, or 8 experts (llama.cpp's own MoE attention rules) Q3_K_M's attention.
bool hifi_attention(const ModelInfo& m) {
  return m.n_expert > 1 && m.n_expert != 8 && m.n_layer >= 4 && 2 * m.n_head_kv >= m.n_head;
}

// ffn_gate and ffn_up: only IQ3_XS changes them (IQ3_XXS for the middle layers).
GgmlType ffn_gate_up_type(const ModelInfo& m, int& counter, FType ft, std::string_view name, GgmlType t) {
  const int i = ffn_layer(m, counter, name), n = m.n_layer;
  ++counter;
  if (ft == FType::Q3_HIFI_M) {
    const HifiZones z = hifi_zones(m);
    return i < z.first || i >= z.last_begin ? G::Q4_K : t;
  }
  return ft == FType::IQ3_XS && i >= n / 8 && i < 7 * n / 8 ? G::IQ3_XXS : t;
}

GgmlType attn_v_type(const ModelInfo& m, MixState& st, FType ft, bool has_imatrix, GgmlType t) {
  const int i = st.i_attention_wv, n = m.n_attention_wv;
  switch (ft) {
    case FType::Q2_K: t = m.n_gqa() >= 4 ? G::Q4_K : G::Q3_K; break;
    case FType::Q2_K_S: if (m.n_gqa() >= 4) t = G::Q4_K; break;
    case FType::IQ3_XXS: t = m.n_gqa() >= 4 ? G::Q4_K : !has_imatrix ? G::IQ3_S : G::IQ3_XXS; break;
    case FType::IQ3_XS: case FType::IQ3_S: if (m.n_gqa() >= 4) t = G::Q4_K; break;
    case FType::IQ3_M: t = G::Q4_K; break;
    case FType::Q3_K_M: t = i < 2 ? G::Q5_K : G::Q4_K; break;
    case FType::Q3_HIFI_M: t = hifi_attention(m) ? G::Q3_HIFI : i < 2 ? G::Q5_K : G::Q4_K; break;
    case FType::Q3_K_L: t = G::Q5_K; break;
    case FType::IQ4_NL: case FType::IQ4_XS: if (m.n_gqa() >= 4) t = G::Q5_K; break;
    case FType::Q4_K_M: case FType::Q5_K_M: if (use_more_bits(i, n)) t = G::Q6_K; break;
    case FType::Q4_K_S: if (i < 4) t = G::Q5_K; break;
    default: break;
  }
  // 70B: attn_v is 8x smaller than attn_q, so more bits cost little.
  if (m.is_70b && (t == G::Q3_K || t == G::Q4_K)) t = G::Q5_K;
  if (m.n_expert == 8) t = G::Q8_0;
  ++st.i_attention_wv;
  return t;
}

GgmlType ffn_down_type(const ModelInfo& m, MixState& st, FType ft, bool has_imatrix,
                       std::string_view name, GgmlType t) {
  const int i = ffn_layer(m, st.i_ffn_down, name), n = m.n_layer;
  const bool falcon = m.is_falcon();
  switch (ft) {
    case FType::Q2_K: t = G::Q3_K; break;
    case FType::Q2_K_S: if (i < n / 8) t = G::Q4_K; break;
    case FType::IQ3_XXS: if (!has_imatrix) t = i < n / 8 ? G::Q4_K : G::Q3_K; break;
    case FType::IQ3_M: if (i < n / 8 || (m.n_expert == 8 && use_more_bits(i, n))) t = G::Q4_K; break;
    case FType::Q3_K_M:
      t = i < n / 16 ? G::Q5_K : (!falcon || use_more_bits(i, n)) ? G::Q4_K : G::Q3_K;
      break;
    case FType::Q3_K_L: t = falcon ? G::Q4_K : G::Q5_K; break;
    case FType::Q3_HIFI_M: {  // the zones of hifi_zones, else Q3_K_M's (non-Falcon) types
      const HifiZones z = hifi_zones(m);
      t = i < z.first ? G::Q5_K : i < z.q3k_end ? G::Q3_K : i < n / 16 ? G::Q5_K : G::Q4_K;
      if (falcon) t = i < n / 16 ? G::Q5_K : use_more_bits(i, n) ? G::Q4_K : G::Q3_K;
      break;
    }
    case FType::Q4_K_M:
      if (falcon)
        t = i < n / 16 ? G::Q6_K : use_more_bits(i, n) ? G::Q5_K : G::Q4_K;
      else if (use_more_bits(i, n))
        t = G::Q6_K;
      break;
    case FType::IQ4_NL: case FType::IQ4_XS:
      if (i < n / 8 && !has_imatrix) t = G::Q5_K;
      break;
    case FType::Q5_K_M: if (use_more_bits(i, n)) t = G::Q6_K; break;
    case FType::Q4_K_S: if (!falcon && i < n / 8) t = G::Q5_K; break;
    // Guards the first ffn_down layers of Q4_0/Q5_0 (only with an imatrix, so that files
    // made without one stay as they always were).
    case FType::Q4_0: if (has_imatrix && i < n / 8) t = G::Q4_1; break;
    case FType::Q5_0: if (has_imatrix && i < n / 8) t = G::Q5_1; break;
    default: break;
  }
  ++st.i_ffn_down;
  return t;
}

GgmlType attn_output_type(const ModelInfo& m, FType ft, GgmlType t) {
  if (m.is_falcon()) return ft == FType::Q3_K_L ? G::Q4_K : t;
  if (m.n_expert == 8) {
    switch (ft) {
      case FType::Q2_K: case FType::Q3_K_S: case FType::Q3_K_M: case FType::Q3_HIFI_M: case FType::IQ4_NL:
      case FType::Q4_K_S: case FType::Q4_K_M: case FType::IQ4_XS: case FType::IQ3_XS:
      case FType::IQ3_XXS: case FType::IQ3_S: case FType::IQ3_M: return G::Q5_K;
      default: return t;
    }
  }
  switch (ft) {
    case FType::Q2_K: return G::Q3_K;
    case FType::Q3_K_M: return G::Q4_K;
    case FType::IQ3_XXS: return G::IQ3_S;
    case FType::IQ3_M: return G::Q4_K;
    case FType::Q3_HIFI_M: return hifi_attention(m) ? G::Q3_HIFI : G::Q4_K;
    case FType::Q3_K_L: return G::Q5_K;
    default: return t;
  }
}

}  // namespace

ModelInfo read_model_info(const gguf::File& f) {
  ModelInfo m;
  if (const gguf::Value* a = f.find("general.architecture"); a && a->type == gguf::ValueType::STRING)
    m.arch = a->as_string();
  const std::string p = m.arch + ".";
  m.n_layer = first_int(f, p + "block_count", 0);
  m.n_head = first_int(f, p + "attention.head_count", 0);
  m.n_head_kv = first_int(f, p + "attention.head_count_kv", m.n_head);
  m.n_expert = first_int(f, p + "expert_count", 0);
  m.is_70b = m.arch == "llama" && m.n_layer == 80 && m.n_head != m.n_head_kv;
  for (const auto& t : f.tensors()) {
    if (contains(t.name, "attn_v.weight") || contains(t.name, "attn_qkv.weight") ||
        contains(t.name, "attn_kv_b.weight"))
      ++m.n_attention_wv;
    else if (t.name == "output.weight")
      m.has_output = true;
  }
  if (m.n_attention_wv != 0 && m.n_attention_wv != m.n_layer)
    throw_error("{}: {} attention value tensors for {} layers ({}block_count)", f.path(),
                m.n_attention_wv, m.n_layer, p);
  return m;
}

bool is_quantizable(std::string_view name, uint32_t n_dims, bool leave_output_tensor) {
  if (!name.ends_with("weight") || n_dims < 2) return false;
  if (contains(name, "_norm.weight")) return false;
  if (leave_output_tensor && name == "output.weight") return false;
  if (name == "position_embd.weight" || name == "token_types.weight") return false;
  // Routers, small special-purpose matrices and multimodal position tensors stay as they are.
  static constexpr std::string_view kKeep[] = {
      "ffn_gate_inp.weight", "altup", "laurel", "per_layer_model_proj", "ssm_conv1d.weight",
      "shortconv.conv.weight", "time_mix_first.weight", "time_mix_w0.weight",
      "time_mix_w1.weight", "time_mix_w2.weight", "time_mix_v0.weight", "time_mix_v1.weight",
      "time_mix_v2.weight", "time_mix_a0.weight", "time_mix_a1.weight", "time_mix_a2.weight",
      "time_mix_g1.weight", "time_mix_g2.weight", "time_mix_decay_w1.weight",
      "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight", "attn_rel_b.weight",
      ".position_embd."};
  for (auto k : kKeep)
    if (contains(name, k)) return false;
  return true;
}

bool is_quantized_type(GgmlType type) {
  switch (G(type)) {
    case G::F32: case G::F16: case G::BF16: case G::I8: case G::I16: case G::I32: case G::I64:
    case G::F64: return false;
    default: return true;
  }
}

// Q3_HIFI_M (imq's), redesigned from per-tensor measurements (bench/README.md, "Q3_HIFI: where
// the bytes go"): Q3_K_M's byte budget moved to where it lowers the KL divergence most.
// * FFN (hifi_zones): the first max(1, n/8) layers' ffn_gate/ffn_up Q4_K and ffn_down Q5_K,
//   and (n >= 6) the last ones' ffn_gate/ffn_up Q4_K, paid for by ffn_down Q3_K in the layers
//   after the first (the three FFN matrices have the same size, so the bpw balance holds for
//   any width). Measured per layer on dict8-spm4k, the first and last layers' FFN upgrades
//   save 3-40x more KLD per byte than the middle layers' ffn_down loses. Not measured on
//   models of 32 layers and more, where 20 of 32 ffn_down tensors become Q3_K.
// * Attention on MoE models: attn_q, attn_v, attn_output Q3_HIFI (attn_q up from Q3_K, the
//   others down from Q4_K/Q5_K at about the same bytes). Dense models keep Q3_K_M's attention:
//   there Q4_K beat Q3_HIFI per byte on every attention kind measured.
GgmlType mix_type(const ModelInfo& m, MixState& st, FType ft, bool has_imatrix,
                  std::string_view name, int64_t ne0, GgmlType t) {
  const Category cat = categorize(m, name);
  if (cat == Category::kOutput) {
    // Q8_0 when the default type's blocks do not fit the rows, Q5_K for the 1-2-bit i-quant
    // mixes (and IQ3_XXS), else at least Q6_K.
    if (m.is_falcon() || ne0 % block_size(t) != 0) return G::Q8_0;
    if (very_low_bit(ft) || ft == FType::IQ3_XXS) return G::Q5_K;
    return t == G::Q8_0 ? t : G::Q6_K;
  }
  if (cat == Category::kTokenEmbd) return token_embd_type(ft, t);
  if (very_low_bit(ft)) return very_low_bit_type(m, st, ft, cat, t);
  switch (cat) {
    case Category::kAttnV: return attn_v_type(m, st, ft, has_imatrix, t);
    case Category::kAttnK:
      if (m.n_expert == 8) return G::Q8_0;
      if (ft == FType::IQ3_XS) return G::IQ3_XXS;
      if (ft == FType::IQ3_XXS) return G::IQ2_S;
      return t;
    case Category::kAttnQ:
      if (ft == FType::IQ3_XS) return G::IQ3_XXS;
      if (ft == FType::IQ3_XXS) return G::IQ2_S;
      return ft == FType::Q3_HIFI_M && hifi_attention(m) ? G::Q3_HIFI : t;
    case Category::kAttnOutput: return attn_output_type(m, ft, t);
    case Category::kFfnDown: return ffn_down_type(m, st, ft, has_imatrix, name, t);
    case Category::kFfnGate: return ffn_gate_up_type(m, st.i_ffn_gate, ft, name, t);
    case Category::kFfnUp: return ffn_gate_up_type(m, st.i_ffn_up, ft, name, t);
    default: return t;
  }
}

bool requires_imatrix(std::string_view name, GgmlType type, FType ftype) {
  if (name == "token_embd.weight" || name == "per_layer_token_embd.weight" || name == "output.weight")
    return false;
  switch (type) {
    case G::IQ3_XXS: case G::IQ2_XXS: case G::IQ2_XS: case G::IQ2_S: case G::IQ1_M: case G::IQ1_S:
      return true;
    case G::Q2_K: return ftype == FType::Q2_K_S;
    default: return false;
  }
}

GgmlType shape_fallback(std::string_view name, int64_t ne0, GgmlType type) {
  if (ne0 % block_size(type) == 0) return type;
  GgmlType f;
  switch (type) {
    case G::Q4_K: f = G::Q5_0; break;
    case G::Q5_K: f = G::Q5_1; break;
    case G::Q6_K: f = G::Q8_0; break;
    case G::Q2_K: case G::Q3_K: case G::TQ1_0: case G::TQ2_0: case G::Q2_0: case G::Q3_HIFI:
      f = G::Q4_0;
      break;
    case G::IQ1_S: case G::IQ1_M: case G::IQ2_XXS: case G::IQ2_XS: case G::IQ2_S:
    case G::IQ3_XXS: case G::IQ3_S: case G::IQ4_XS: f = G::IQ4_NL; break;
    default:
      throw_error("tensor {}: row length {} is not a multiple of {} as {} needs, and no tensor "
                  "type fallback is defined for type {}", name, ne0, block_size(type),
                  ggml_type_info(type)->name, ggml_type_info(type)->name);
  }
  if (ne0 % block_size(f) != 0) f = G::F16;
  return f;
}

}  // namespace imq::quantize
