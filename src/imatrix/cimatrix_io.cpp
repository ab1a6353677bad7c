// mistral.rs's .cimatrix (imatrix-tools.md), little-endian, no magic:
//
//   u64 n_entries
//   n_entries x { u64 key_len | key (module path) | u64 n | f32 values[n] }
//
// values = mean squared activation * ncalls, with ncalls not stored: each entry is read as
// ncall = 1. Routed experts are one entry of n_expert * ne0 values (expert-major).
#include <charconv>
#include <optional>
#include <cstring>

#include "core/byte_reader.h"
#include "core/mapped_file.h"
#include "imq/error.h"
#include "imq/gguf.h"
#include "imq/hf.h"
#include "imq/imatrix.h"
#include "imatrix/readers.h"

namespace imq::imatrix {

namespace {

// The GGUF component of a module name below "model.layers.N." ("" when unknown).
std::string_view layer_component(std::string_view rest) {
  struct Map { std::string_view from, to; };
  static constexpr Map kMap[] = {
      {"self_attn.q_proj", "attn_q"},   {"self_attn.k_proj", "attn_k"},
      {"self_attn.v_proj", "attn_v"},   {"self_attn.o_proj", "attn_output"},
      {"mlp.gate_proj", "ffn_gate"},    {"mlp.up_proj", "ffn_up"},
      {"mlp.down_proj", "ffn_down"},    {"mlp.gate", "ffn_gate_inp"},
      {"block_sparse_moe.gate", "ffn_gate_inp"},
      {"block_sparse_moe.experts.w1", "ffn_gate_exps"},
      {"block_sparse_moe.experts.w3", "ffn_up_exps"},
      {"block_sparse_moe.experts.w2", "ffn_down_exps"},
      {"block_sparse_moe.experts.gate_proj", "ffn_gate_exps"},
      {"block_sparse_moe.experts.up_proj", "ffn_up_exps"},
      {"block_sparse_moe.experts.down_proj", "ffn_down_exps"},
      {"mlp.experts.gate_proj", "ffn_gate_exps"},
      {"mlp.experts.up_proj", "ffn_up_exps"},
      {"mlp.experts.down_proj", "ffn_down_exps"},
      {"mlp.experts.w1", "ffn_gate_exps"},
      {"mlp.experts.w3", "ffn_up_exps"},
      {"mlp.experts.w2", "ffn_down_exps"},
  };
  for (const auto& m : kMap)
    if (rest == m.from) return m.to;
  return {};
}

int64_t model_expert_count(const gguf::File& f) {
  if (auto n = f.find_int("llama.expert_count")) return *n;
  if (const gguf::Value* a = f.find("general.architecture"); a && a->type == gguf::ValueType::STRING)
    if (auto n = f.find_int(a->as_string() + ".expert_count")) return *n;
  return 0;
}

}  // namespace

std::string cimatrix_weight_name(std::string_view key) {
  if (key == "lm_head") return "output.weight";
  if (key.starts_with("model.")) key.remove_prefix(6);
  if (!key.starts_with("layers.")) return "";
  key.remove_prefix(7);
  const size_t dot = key.find('.');
  if (dot == std::string_view::npos || dot == 0) return "";
  int layer = 0;
  auto [p, ec] = std::from_chars(key.data(), key.data() + dot, layer);
  if (ec != std::errc() || p != key.data() + dot || layer < 0) return "";
  std::string_view comp = layer_component(key.substr(dot + 1));
  if (comp.empty()) return "";
  return "blk." + std::to_string(layer) + "." + std::string(comp) + ".weight";
}

Imatrix read_cimatrix(const std::string& path, const ReadOptions& opt) {
  if (opt.chunk_size == 0) throw_error("{}: reading a .cimatrix needs a chunk size > 0", path);
  std::optional<gguf::File> model;
  if (!opt.model_path.empty()) model.emplace(hf::open_model_file(opt.model_path));
  MappedFile file(path);
  return parse_cimatrix(file.bytes(), path, opt, model ? &*model : nullptr);
}

Imatrix parse_cimatrix(std::span<const uint8_t> bytes, const std::string& path, const ReadOptions& opt,
                       const gguf::File* model) {
  if (opt.chunk_size == 0) throw_error("{}: reading a .cimatrix needs a chunk size > 0", path);
  const int64_t n_expert = model ? model_expert_count(*model) : opt.n_expert;
  ByteReader r(bytes, path);
  if (r.size() == 0) throw_error("{}: empty file (expected a .cimatrix)", path);
  const uint64_t n_entries = r.read<uint64_t>("entry count");
  if (n_entries == 0 || n_entries > r.remaining() / 16)
    r.fail(0, fmt::format("entry count {} (expected 1..{})", n_entries, r.remaining() / 16));

  Imatrix m;
  m.chunk_size = opt.chunk_size;
  m.chunk_count = 1;
  for (uint64_t i = 0; i < n_entries; ++i) {
    const uint64_t at = r.offset();
    const uint64_t key_len = r.read<uint64_t>("key length");
    if (key_len == 0 || key_len > r.remaining())
      r.fail(at, fmt::format("entry {}: key length {} (expected 1..{})", i, key_len, r.remaining()));
    const std::string key = r.string(key_len, "key");
    const std::string name = cimatrix_weight_name(key);
    if (name.empty()) r.fail(at, fmt::format("entry {}: module {} names no known weight", i, key));
    const uint64_t n_at = r.offset();
    const uint64_t n = r.read<uint64_t>("value count");
    if (n == 0 || n > r.remaining() / sizeof(float))
      r.fail(n_at, fmt::format("{}: value count {} (expected 1..{})", key, n, r.remaining() / sizeof(float)));
    auto bytes = r.bytes(n * sizeof(float), "values");

    const bool experts = name.find("_exps.") != std::string::npos;
    uint64_t n_slots = 1;
    if (experts) {
      if (n_expert <= 0 && model)
        r.fail(at, fmt::format("{}: expert weights, but the model {} has no experts", key, opt.model_path));
      if (n_expert <= 0)
        r.fail(at, fmt::format("{}: expert weights need the model (-m) or the number of experts", key));
      n_slots = uint64_t(n_expert);
      if (n % n_slots != 0)
        r.fail(n_at, fmt::format("{}: {} values are not a multiple of {} experts", key, n, n_slots));
    }
    if (model) {
      const gguf::TensorInfo* t = model->find_tensor(name);
      if (!t) throw_error("{}: module {} maps to {}, which {} does not have", path, key, name, opt.model_path);
      if (uint64_t(t->ne[0]) * n_slots != n)
        throw_error("{}: module {} has {} values, {} expects {} x {}", path, key, n, name, t->ne[0], n_slots);
    }
    Entry e;
    e.sums.resize(n);
    std::memcpy(e.sums.data(), bytes.data(), bytes.size());
    const float scale = float(opt.chunk_size);
    for (float& v : e.sums) v *= scale;
    e.counts.assign(n_slots, scale);
    if (!m.entries.emplace(name, std::move(e)).second)
      r.fail(at, fmt::format("entry {}: module {} maps to {} a second time", i, key, name));
  }
  if (!r.at_end()) r.fail(r.offset(), fmt::format("{} unexpected bytes after the last entry", r.remaining()));
  validate(m, path, opt.allow_non_finite);
  return m;
}

}  // namespace imq::imatrix
