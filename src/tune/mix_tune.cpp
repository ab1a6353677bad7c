// tune_mix: measure what each group of tensors costs at each K-quant type (KL divergence on
// calibration chunks, only that group quantized, in memory through Model::replace_weight),
// then choose one type per group by a multiple-choice knapsack under the standard mix's bytes.
#include "imq/mix_tune.h"

#include <algorithm>
#include <limits>
#include <map>
#include <optional>

#include <fmt/format.h>

#include "core/atomic_file.h"
#include "imq/error.h"
#include "imq/eval.h"
#include "imq/ggml_types.h"
#include "imq/model.h"
#include "imq/tokenizer.h"

namespace imq::tune {

namespace {

using quantize::TensorPlan;
using G = GgmlType;

// The types a group may get, cheapest first.
constexpr G kLadder[] = {G::Q2_K, G::Q3_K, G::Q4_K, G::Q5_K, G::Q6_K, G::Q8_0};

// "blk.3.attn_v.weight" -> "attn_v.weight"; other names unchanged.
std::string kind_of(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return name;
  const size_t dot = name.find('.', 4);
  return dot == std::string::npos ? name : name.substr(dot + 1);
}

std::string regex_escape(const std::string& s) {
  static const std::string special = R"(\^$.|?*+()[]{})";
  std::string out;
  for (char c : s) {
    if (special.find(c) != std::string::npos) out += '\\';
    out += c;
  }
  return out;
}

// Mean KL divergence of the model's current weights against the base logits (eval's KLD).
double mean_kld(model::Session& session, const eval::LogitsFile& base, const eval::ChunkOptions& co) {
  const eval::KldTotals t = eval::kl_divergence(session, base, co).totals;
  if (t.count == 0) throw_error("no scored positions in the calibration chunks");
  return t.sum_kld / double(t.count);
}

// Multiple-choice knapsack: one candidate per group, sum of KLD minimal, bytes <= budget.
// Bytes are counted in units rounded up, so the answer never exceeds the budget.
std::vector<size_t> choose(const std::vector<GroupResult>& groups, uint64_t budget) {
  const uint64_t unit = std::max<uint64_t>(1, (budget + 19999) / 20000);
  const size_t cap = size_t(budget / unit);
  constexpr double kInf = std::numeric_limits<double>::infinity();
  std::vector<std::vector<double>> best(groups.size() + 1, std::vector<double>(cap + 1, kInf));
  std::vector<std::vector<uint8_t>> pick(groups.size(), std::vector<uint8_t>(cap + 1, 0));
  std::fill(best[0].begin(), best[0].end(), 0.0);
  for (size_t g = 0; g < groups.size(); ++g)
    for (size_t u = 0; u <= cap; ++u)
      for (size_t c = 0; c < groups[g].candidates.size(); ++c) {
        const uint64_t cost = (groups[g].candidates[c].bytes + unit - 1) / unit;
        if (cost > u || best[g][u - cost] == kInf) continue;
        const double v = best[g][u - cost] + groups[g].candidates[c].kld;
        if (v < best[g + 1][u]) best[g + 1][u] = v, pick[g][u] = uint8_t(c);
      }
  if (best[groups.size()][cap] == kInf) return {};
  std::vector<size_t> out(groups.size());
  size_t u = cap;
  for (size_t g = groups.size(); g-- > 0;) {
    out[g] = pick[g][u];
    u -= size_t((groups[g].candidates[out[g]].bytes + unit - 1) / unit);
  }
  return out;
}

}  // namespace

MixTuneResult tune_mix(const std::string& model_path, const quantize::Options& options,
                       std::string_view text, const MixTuneOptions& tune) {
  auto say = [&](const std::string& s) {
    if (tune.log) tune.log(s);
  };
  auto model = model::Model::load(model_path);
  const gguf::File& file = model->file();
  const quantize::Plan standard = quantize::make_plan(file, options);
  const GgmlType base_type = standard.ftype.default_type;
  if (std::none_of(std::begin(kLadder), std::end(kLadder) - 1, [&](G t) { return t == base_type; }))
    throw_error("--tune-mix needs a K-quant mix (Q2_K ... Q6_K and their _S/_M/_L), not {}",
                standard.ftype.name);

  const auto tokenizer = load_tokenizer(file);
  const std::vector<int32_t> tokens = tokenizer->encode(text, true, false);
  eval::ChunkOptions co;
  const int64_t n_ctx_train = model->config().n_ctx_train;
  co.n_ctx = tune.n_ctx > 0 ? tune.n_ctx : n_ctx_train > 0 ? std::min<int64_t>(512, n_ctx_train) : 512;
  co.n_chunks = tune.n_chunks;
  co.bos = tokenizer->add_bos() ? tokenizer->bos() : -1;
  co.text_name = tune.text_name;
  try {
    co.n_chunks = eval::chunk_count(int64_t(tokens.size()), co);
  } catch (const Error& e) {
    throw_error("{} (--tune-ctx sets the context)", e.what());
  }
  model::SessionOptions so;
  so.n_ctx = co.n_ctx;
  so.n_ubatch = co.n_ctx;
  so.n_threads = tune.n_threads;
  say(fmt::format("tune: {} calibration chunks of {} tokens, KL divergence of positions {}..{}",
                  co.n_chunks, co.n_ctx, co.n_ctx / 2, co.n_ctx - 2));
  model::Session session(*model, so);
  const auto base = eval::LogitsFile::compute(session, tokens, co);

  // Groups of tunable tensors, in output order.
  MixTuneResult r;
  std::map<std::string, const TensorPlan*> by_name;
  std::map<std::string, size_t> group_of;
  for (const TensorPlan& tp : standard.tensors) {
    if (!tp.quantize || tp.type_forced) continue;
    by_name[tp.name] = &tp;
    const std::string key = tune.granularity == Granularity::kCategory ? kind_of(tp.name) : tp.name;
    auto [it, added] = group_of.emplace(key, r.groups.size());
    if (added) r.groups.push_back(GroupResult{key, {}, {}, 0, 0});
    r.groups[it->second].tensors.push_back(tp.name);
    r.groups[it->second].standard_bytes += tp.dst_bytes;
    r.budget_bytes += tp.dst_bytes;
  }
  if (r.groups.empty()) throw_error("--tune-mix: no tensor left to tune");

  // Puts every tensor of `types` (name -> type) into the model, runs the probe, restores.
  auto measure_with = [&](const std::map<std::string, GgmlType>& types) {
    for (const auto& [name, type] : types)
      model->replace_weight(name, type, quantize::quantize_tensor(file, *by_name.at(name), type,
                                                                  options.search, tune.n_threads));
    const double kld = mean_kld(session, *base, co);
    for (const auto& [name, type] : types) model->replace_weight(name, GgmlType::F32, {});  // empty: restores the file's
    return kld;
  };

  // The type each tensor of g gets for a ladder type (its shape fallback), nullopt if one
  // cannot hold it.
  using Types = std::map<std::string, GgmlType>;
  auto types_for = [&](const GroupResult& g, GgmlType ladder) -> std::optional<Types> {
    Types types;
    for (const auto& name : g.tensors) {
      const auto t = quantize::fitted_type(name, by_name.at(name)->ne[0], ladder);
      if (!t) return std::nullopt;
      types[name] = *t;
    }
    return types;
  };

  for (GroupResult& g : r.groups) {
    std::vector<Types> seen;
    std::string line = fmt::format("tune: {:<24}", g.name);
    for (G ladder : kLadder) {
      const auto types = types_for(g, ladder);
      if (!types || std::find(seen.begin(), seen.end(), *types) != seen.end()) continue;
      seen.push_back(*types);
      uint64_t bytes = 0;
      for (const auto& [name, t] : *types) bytes += by_name.at(name)->bytes_as(t);
      const double kld = measure_with(*types);
      g.candidates.push_back({ladder, bytes, kld});
      line += fmt::format(" {}:{:.6f}", ggml_type_info(ladder)->name, kld);
    }
    if (g.candidates.empty()) throw_error("--tune-mix: no K-quant type fits tensor {}", g.tensors[0]);
    say(line);
  }

  // Alignment padding may add up to 32 bytes per tensor: keep that much aside.
  const uint64_t slack = 32 * by_name.size();
  const auto picks = choose(r.groups, r.budget_bytes > slack ? r.budget_bytes - slack : 0);
  Types chosen, standard_types;
  for (const auto& [name, tp] : by_name) standard_types[name] = tp->dst_type;
  for (size_t g = 0; g < picks.size(); ++g) {
    GroupResult& gr = r.groups[g];
    gr.chosen = picks[g];
    r.chosen_bytes += gr.candidates[gr.chosen].bytes;
    chosen.merge(*types_for(gr, gr.candidates[gr.chosen].type));
  }
  r.kld_standard = measure_with(standard_types);
  r.kld_chosen = picks.empty() ? r.kld_standard : measure_with(chosen);
  say(fmt::format("tune: whole mix on the calibration text: standard KLD {:.6f} ({} bytes), "
                  "tuned {:.6f} ({} bytes)", r.kld_standard, r.budget_bytes, r.kld_chosen,
                  r.chosen_bytes));
  r.kept_standard = picks.empty() || !(r.kld_chosen < r.kld_standard);
  if (r.kept_standard) return r;
  // Every tuned tensor gets its exact-name override, also where the type is the standard one:
  // a manual override stops llama-quantize's rule counters (attn_v, ffn_down), so a partial
  // list would shift the rule's choice for the tensors left to it.
  for (const auto& [name, type] : chosen) r.overrides.push_back({"^" + regex_escape(name) + "$", type});
  return r;
}

std::string tensor_type_file_text(const MixTuneResult& r) {
  // No comments: llama-quantize's --tensor-type-file reads whitespace-separated entries only.
  std::string s;
  for (const auto& o : r.overrides) s += fmt::format("{}={}\n", o.pattern, ggml_type_info(o.type)->name);
  return s;
}

void write_tensor_type_file(const std::string& path, const MixTuneResult& r) {
  const std::string text = tensor_type_file_text(r);
  AtomicFile f(path);
  f.write(text.data(), text.size());
  f.commit();
}

}  // namespace imq::tune
