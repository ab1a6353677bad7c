// make_plan: every output tensor's type, order and offset, and the output metadata, exactly as
// llama-quantize decides them (spec e, f). Nothing is quantized here.
#include <algorithm>
#include <regex>

#include "imq/error.h"
#include "imq/ggml_types.h"
#include "imq/quant.h"
#include "imq/quantize.h"
#include "quantize/importance.h"
#include "quantize/plan_internal.h"
#include "quantize/rules.h"

namespace imq::quantize {

namespace {

using G = GgmlType;

// llama.cpp's weight order: block number (-1 for non-block tensors), then name bytes.
int block_number(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return -1;
  int v = 0;
  size_t i = 4;
  bool neg = i < name.size() && name[i] == '-';
  if (neg) ++i;
  if (i >= name.size() || name[i] < '0' || name[i] > '9') return -1;
  for (; i < name.size() && name[i] >= '0' && name[i] <= '9'; ++i) v = v * 10 + (name[i] - '0');
  return neg ? -v : v;
}

std::string truncate(std::string s, size_t n) {
  if (s.size() > n) s.resize(n);
  return s;
}

// The type chosen for one quantizable tensor before comparing with its current type.
struct Choice {
  GgmlType type;
  std::optional<GgmlType> fallback_from;
  bool forced = false;  // given by the user, not by the mix rule
};

using Overrides = std::vector<std::pair<std::regex, GgmlType>>;

Choice choose_type(const ModelInfo& m, MixState& st, const Options& opt, const FTypeInfo& ft,
                   bool has_imatrix, const Overrides& overrides, const gguf::TensorInfo& t) {
  const std::string& name = t.name;
  // Forced types apply before any rule and bypass the shape fallback. With tied embeddings
  // token_embd follows --output-tensor-type unless --token-embedding-type is given.
  const bool is_tok = name == "token_embd.weight" || name == "per_layer_token_embd.weight";
  if (is_tok && opt.token_embedding_type) return {*opt.token_embedding_type, std::nullopt, true};
  const bool is_out = name == "output.weight" || (!m.has_output && name == "token_embd.weight");
  if (is_out && opt.output_tensor_type) return {*opt.output_tensor_type, std::nullopt, true};

  GgmlType type = ft.default_type;
  if (!is_quantized_type(ft.default_type)) return {type, std::nullopt};
  // --tensor-type: the first matching pattern replaces the mix rule (whose counters then do
  // not advance for this tensor, as in llama-quantize); the shape fallback still applies.
  auto manual = std::find_if(overrides.begin(), overrides.end(),
                             [&](const auto& o) { return std::regex_search(name, o.first); });
  const bool forced = manual != overrides.end();
  if (forced)
    type = manual->second;
  else if (!opt.pure)
    type = mix_type(m, st, ft.ftype, has_imatrix, name, t.ne[0], type);
  const GgmlType fitted = shape_fallback(name, t.ne[0], type);
  if (fitted != type) return {fitted, type, forced};
  return {type, std::nullopt, forced};
}

void set_kv(std::vector<gguf::KeyValue>& kvs, std::string key, gguf::Value v) {
  std::erase_if(kvs, [&](const gguf::KeyValue& kv) { return kv.key == key; });
  kvs.push_back({std::move(key), std::move(v)});
}

void remove_kv(std::vector<gguf::KeyValue>& kvs, std::string_view key) {
  std::erase_if(kvs, [&](const gguf::KeyValue& kv) { return kv.key == key; });
}

// Attaches the imatrix entry of one tensor (spec e.4): exact name, length ne0 * ne2.
void attach_importance(TensorPlan& tp, const ImportanceData& imp, const std::string& path,
                       std::vector<std::string>& warnings) {
  auto it = imp.entries.find(tp.name);
  if (it == imp.entries.end()) {
    tp.importance_use = ImportanceUse::kMissing;
    return;
  }
  const size_t want = size_t(tp.ne[0] * tp.ne[2]);
  if (it->second.size() != want) {
    if (tp.name != "token_embd.weight")
      throw_error("{}: imatrix entry {} has {} values but the tensor needs {} (ne0 {} x {} "
                  "experts): is the imatrix for another model?", path, tp.name,
                  it->second.size(), want, tp.ne[0], tp.ne[2]);
    warnings.push_back(fmt::format("{}: imatrix entry {} has {} values, the tensor needs {}: "
                                   "quantized without importance", path, tp.name,
                                   it->second.size(), want));
    tp.importance_use = ImportanceUse::kSizeMismatch;
    return;
  }
  tp.importance_use = ImportanceUse::kUsed;
  tp.importance = it->second;
}

// Q3_HIFI picks its outliers by importance; say once when some or all of them cannot.
void note_q3_hifi_importance(Plan& plan, bool has_imatrix) {
  size_t n = 0;
  const TensorPlan* first = nullptr;
  for (const auto& tp : plan.tensors) {
    if (!tp.quantize || tp.dst_type != G::Q3_HIFI) continue;
    if (tp.importance_use == ImportanceUse::kUsed) continue;
    if (!first) first = &tp;
    ++n;
  }
  if (n == 0) return;
  if (!has_imatrix)
    plan.warnings.push_back("Q3_HIFI without an imatrix: outliers are chosen by weight magnitude "
                            "and plain squared error, not by importance (use --imatrix)");
  else
    plan.warnings.push_back(fmt::format("Q3_HIFI: {} tensor(s) without imatrix data (first: {}) "
                                        "get outliers chosen without importance", n, first->name));
}

}  // namespace

uint64_t TensorPlan::bytes_as(GgmlType type) const {
  const auto info = ggml_type_info(type);
  return uint64_t(ne[0] / info->block_size) * info->type_size * uint64_t(ne[1] * ne[2] * ne[3]);
}

std::optional<GgmlType> fitted_type(std::string_view name, int64_t ne0, GgmlType type) {
  try {
    return shape_fallback(name, ne0, type);
  } catch (const Error&) {
    return std::nullopt;
  }
}

std::vector<size_t> output_order(const gguf::File& model) {
  std::vector<size_t> order(model.tensors().size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  const auto& ts = model.tensors();
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const int ba = block_number(ts[a].name), bb = block_number(ts[b].name);
    if (ba != bb) return ba < bb;
    return ts[a].name < ts[b].name;
  });
  return order;
}

Plan make_plan(const gguf::File& model, const Options& opt) {
  Plan plan;
  plan.ftype = *std::find_if(ftypes().begin(), ftypes().end(), [&](const FTypeInfo& f) {
    return f.ftype == opt.ftype && !f.description.starts_with("alias");
  });
  plan.search = opt.search;
  plan.q3_hifi_outliers = opt.q3_hifi_outliers;
  if (!opt.include_weights.empty() && !opt.exclude_weights.empty())
    throw_error("--include-weights and --exclude-weights cannot be used together");

  ImportanceData imp;
  const std::string imatrix_name = opt.imatrix_path.empty() ? "the imatrix in memory" : opt.imatrix_path;
  if (opt.imatrix || !opt.imatrix_path.empty()) {
    imp = opt.imatrix ? importance_from(*opt.imatrix) : load_importance(opt.imatrix_path);
    filter_importance(imp, opt.include_weights, opt.exclude_weights);
  }
  const bool has_imatrix = !imp.entries.empty();
  if (has_imatrix) check_imatrix_matches(model, imp, imatrix_name);

  const ModelInfo info = read_model_info(model);
  Overrides overrides;
  for (const auto& o : opt.tensor_types) overrides.emplace_back(std::regex(o.pattern), o.type);
  MixState state;
  std::optional<std::string> no_codec;  // reported after the imatrix checks, as llama-quantize orders them
  for (size_t idx : output_order(model)) {
    const gguf::TensorInfo& t = model.tensors()[idx];
    TensorPlan tp;
    tp.name = t.name;
    std::copy(t.ne, t.ne + 4, tp.ne);
    tp.n_dims = gguf::ggml_n_dims(std::span<const int64_t>(t.ne, 4));
    tp.src_type = tp.dst_type = t.type;
    tp.src_bytes = t.n_bytes;
    if (is_quantizable(t.name, tp.n_dims, opt.leave_output_tensor)) {
      Choice c = choose_type(info, state, opt, plan.ftype, has_imatrix, overrides, t);
      tp.dst_type = c.type;
      tp.fallback_from = c.fallback_from;
      tp.type_forced = c.forced;
      if (c.fallback_from) ++plan.n_fallback;
      tp.quantize = tp.dst_type != tp.src_type;
    }
    if (tp.quantize) {
      auto dst_info = ggml_type_info(tp.dst_type);
      if (tp.ne[0] % dst_info->block_size != 0)  // only forced types get here
        throw_error("tensor {}: row length {} is not a multiple of {} as {} needs", tp.name,
                    tp.ne[0], dst_info->block_size, dst_info->name);
      if (is_quantized_type(tp.src_type) && !opt.allow_requantize)
        throw_error("tensor {} is already quantized ({}): requantizing to {} needs "
                    "--allow-requantize", tp.name, ggml_type_info(tp.src_type)->name,
                    dst_info->name);
      if (has_imatrix) attach_importance(tp, imp, imatrix_name, plan.warnings);
      // As llama-quantize: the 1-2-bit i-quants, IQ3_XXS and Q2_K inside Q2_K_S are refused
      // without imatrix data for the tensor (--dry-run only warns).
      if (requires_imatrix(tp.name, tp.dst_type, opt.ftype) && tp.importance_use != ImportanceUse::kUsed) {
        std::string msg = fmt::format("tensor {}: {} in the {} mix needs an importance matrix ({})",
                                      tp.name, ggml_type_display_name(tp.dst_type), plan.ftype.name,
                                      has_imatrix ? "the imatrix has no entry for it" : "use --imatrix");
        if (!opt.dry_run) throw Error(msg);
        plan.warnings.push_back(std::move(msg));
      }
      if (!opt.dry_run && !no_codec && !quant::find_codec(tp.dst_type))
        no_codec = fmt::format("tensor {}: imq cannot write {} yet (no codec for it; --dry-run shows "
                               "the {} mix)", tp.name, ggml_type_display_name(tp.dst_type),
                               plan.ftype.name);
    }
    tp.dst_bytes = tp.bytes_as(tp.dst_type);
    plan.src_bytes += tp.src_bytes;
    plan.dst_bytes += tp.dst_bytes;
    plan.n_elements += tp.n_elements();
    plan.tensors.push_back(std::move(tp));
  }

  if (no_codec) throw Error(*no_codec);
  note_q3_hifi_importance(plan, has_imatrix);

  // Metadata: every input key, then the quantization keys (set = remove and append).
  plan.kvs = model.kvs();
  set_kv(plan.kvs, "general.quantization_version", gguf::Value::u32(2));
  set_kv(plan.kvs, "general.file_type", gguf::Value::u32(uint32_t(opt.ftype)));
  // imq's own tensor type: readers refuse Q3_HIFI tensors in a file without this key.
  if (std::any_of(plan.tensors.begin(), plan.tensors.end(), [](const TensorPlan& tp) {
        return tp.dst_type == G::Q3_HIFI;
      }))
    set_kv(plan.kvs, std::string(kQ3HifiVersionKey), gguf::Value::u32(kQ3HifiVersion));
  for (auto k : {"split.no", "split.count", "split.tensors.count"}) remove_kv(plan.kvs, k);
  if (has_imatrix) {
    // llama-quantize passes these as fixed 128-byte override strings.
    if (!opt.imatrix_path.empty())
      set_kv(plan.kvs, "quantize.imatrix.file", gguf::Value::str(truncate(opt.imatrix_path, 127)));
    if (!imp.datasets.empty())
      set_kv(plan.kvs, "quantize.imatrix.dataset", gguf::Value::str(truncate(imp.datasets[0], 127)));
    set_kv(plan.kvs, "quantize.imatrix.entries_count", gguf::Value::u32(uint32_t(imp.entries.size())));
    if (imp.chunk_count > 0)
      set_kv(plan.kvs, "quantize.imatrix.chunks_count", gguf::Value::u32(imp.chunk_count));
    plan.imatrix = ImatrixSummary{imatrix_name, imp.datasets, imp.entries.size(), imp.chunk_count};
  }
  plan.alignment = model.alignment();
  layout(plan);
  return plan;
}

}  // namespace imq::quantize
