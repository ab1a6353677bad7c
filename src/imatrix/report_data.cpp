// The report's data: one JSON object the page draws from (see report.h). Layout:
//   files[]     {name, datasets, chunk_count, chunk_size, entries, tokens}
//   warnings[]  {file, level: "bad"|"warn", tensor, text}
//   kinds[], layers[]  heatmap columns (canonical order) and rows (-1 = outside any block)
//   tensors[]   {name, layer, kind, ne0, slots, counts, nonfinite, zero_slots, stats|null,
//                maxmean, hist {lo, hi, counts, nonpos}, curve {n, rank[], value[]}, top[]}
//   experts     {n_expert, layers[] {layer, tensor, counts[]}} or null
//   compare     {name, rows[] {name, layer, kind, cos, ratio, mean_a, mean_b}, only_a, only_b}
// The statistics are imatrix::compute_statistics' (ZD as a percentage); stats is null for an
// entry without data (every count 0). Only the presentation is computed here: histograms,
// downsampled sorted curves, top columns, and the cosine between two files.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <map>
#include <numeric>
#include <set>

#include "imatrix/report.h"
#include "imq/error.h"

namespace imq::imatrix {
namespace {

using nlohmann::json;

// A number rounded to `sig` significant digits (short JSON), null when not finite.
json num(double v, int sig = 6) {
  if (!std::isfinite(v)) return nullptr;
  if (v == 0) return 0.0;
  std::string s = fmt::format("{:.{}g}", v, sig);
  return std::strtod(s.c_str(), nullptr);
}

// Heatmap column order: the usual order of a transformer block, unknown kinds after (sorted).
const char* const kKindOrder[] = {
    "attn_q",        "attn_k",         "attn_v",         "attn_qkv",      "attn_output",
    "ffn_gate_inp",  "ffn_gate",       "ffn_up",         "ffn_down",      "ffn_gate_exps",
    "ffn_up_exps",   "ffn_down_exps",  "ffn_gate_shexp", "ffn_up_shexp",  "ffn_down_shexp",
    "output",
};

std::vector<std::string> ordered_kinds(const std::set<std::string>& present) {
  std::vector<std::string> out;
  for (const char* k : kKindOrder)
    if (present.count(k)) out.push_back(k);
  for (const auto& k : present)
    if (std::find(out.begin(), out.end(), k) == out.end()) out.push_back(k);
  return out;
}

using StatsByName = std::map<std::string, const TensorStatistics*>;

StatsByName by_name(const Statistics& s) {
  StatsByName m;
  for (const auto& t : s.tensors) m[t.name] = &t;
  return m;
}

// One column's importance (sum / count) with its position.
struct Column {
  float value;
  uint32_t col;
  uint32_t expert;
};

std::vector<Column> finite_columns(const Entry& e) {
  std::vector<Column> out;
  const size_t n = e.sums.size() / e.counts.size();
  for (size_t k = 0; k < e.counts.size(); ++k) {
    if (!(e.counts[k] > 0)) continue;
    for (size_t j = 0; j < n; ++j) {
      float v = e.sums[k * n + j] / e.counts[k];
      if (std::isfinite(v)) out.push_back({v, static_cast<uint32_t>(j), static_cast<uint32_t>(k)});
    }
  }
  return out;
}

// Ranks kept for the sorted curve: half evenly spaced, half log-spaced (so the head, where the
// outliers are, keeps its shape on a log-rank axis).
std::vector<size_t> curve_ranks(size_t n, size_t max_points) {
  std::vector<size_t> r;
  if (n <= max_points) {
    r.resize(n);
    std::iota(r.begin(), r.end(), 0);
    return r;
  }
  const size_t half = std::max<size_t>(max_points / 2, 2);
  for (size_t k = 0; k < half; ++k) r.push_back(k * (n - 1) / (half - 1));
  for (size_t k = 0; k < max_points - half; ++k) {
    double x = std::exp(std::log(static_cast<double>(n)) * k / (max_points - half - 1));
    r.push_back(std::min(n - 1, static_cast<size_t>(x) - 1));
  }
  std::sort(r.begin(), r.end());
  r.erase(std::unique(r.begin(), r.end()), r.end());
  return r;
}

json distribution(std::vector<Column> cols, const ReportOptions& opt, json& t) {
  std::sort(cols.begin(), cols.end(), [](const Column& x, const Column& y) {
    return x.value > y.value || (x.value == y.value && (x.expert < y.expert ||
                                  (x.expert == y.expert && x.col < y.col)));
  });
  json top = json::array();
  for (size_t i = 0; i < std::min(opt.top_outliers, cols.size()); ++i)
    top.push_back({{"col", cols[i].col}, {"expert", cols[i].expert}, {"value", num(cols[i].value, 9)}});
  t["top"] = std::move(top);

  json rank = json::array(), value = json::array();
  for (size_t r : curve_ranks(cols.size(), opt.max_points)) {
    rank.push_back(r);
    value.push_back(num(cols[r].value, 4));
  }
  t["curve"] = {{"n", cols.size()}, {"rank", std::move(rank)}, {"value", std::move(value)}};

  // Histogram of log10(value) over the positive values.
  size_t nonpos = 0;
  double lo = INFINITY, hi = -INFINITY;
  for (const auto& c : cols) {
    if (c.value <= 0) { ++nonpos; continue; }
    lo = std::min(lo, std::log10(static_cast<double>(c.value)));
    hi = std::max(hi, std::log10(static_cast<double>(c.value)));
  }
  json hist = {{"nonpos", nonpos}};
  if (nonpos < cols.size()) {
    if (hi - lo < 1e-3) { lo -= 0.5; hi += 0.5; }
    std::vector<uint64_t> counts(opt.hist_bins, 0);
    for (const auto& c : cols) {
      if (c.value <= 0) continue;
      double x = (std::log10(static_cast<double>(c.value)) - lo) / (hi - lo) * opt.hist_bins;
      counts[std::min(opt.hist_bins - 1, static_cast<size_t>(std::max(0.0, x)))]++;
    }
    hist["lo"] = num(lo);
    hist["hi"] = num(hi);
    hist["counts"] = counts;
  }
  return hist;
}

json stats_json(const TensorStatistics& s) {
  return {{"sum", num(s.sum)},       {"min", num(s.min)},         {"max", num(s.max)},
          {"mean", num(s.mean)},     {"std", num(s.stddev)},      {"active", num(s.active)},
          {"n", s.n},                {"entropy", num(s.entropy)}, {"enorm", num(s.entropy_norm)},
          {"zd", num(100.0 * s.zd)}, {"cos", num(s.cossim)}};
}
std::string list_experts(const std::vector<size_t>& ks) {
  std::string s;
  for (size_t i = 0; i < ks.size() && i < 16; ++i) s += (i ? ", " : "") + std::to_string(ks[i]);
  if (ks.size() > 16) s += fmt::format(", … ({} more)", ks.size() - 16);
  return s;
}

void add_warning(json& w, int file, const char* level, const std::string& tensor, std::string text) {
  w.push_back({{"file", file}, {"level", level}, {"tensor", tensor}, {"text", std::move(text)}});
}

// Coverage warnings of one file (imatrix::coverage_issues), naming the empty experts.
void file_warnings(const Imatrix& m, int file, json& w) {
  for (const auto& c : coverage_issues(m)) {
    std::string text = describe(c).substr(c.name.size() + 2);
    const Entry& e = m.entries.at(c.name);
    if (c.n_empty && c.n_empty < c.n_slots) {
      std::vector<size_t> zero;
      for (size_t k = 0; k < e.counts.size(); ++k)
        if (!(e.counts[k] > 0)) zero.push_back(k);
      text += ": " + list_experts(zero);
    }
    add_warning(w, file, c.n_non_finite ? "bad" : "warn", c.name, std::move(text));
  }
}

json file_json(const Imatrix& m, const std::string& name) {
  double tokens = 0;
  for (const auto& [n, e] : m.entries)
    if (e.counts.size() == 1 && std::isfinite(e.counts[0])) tokens = std::max<double>(tokens, e.counts[0]);
  return {{"name", name},           {"datasets", m.datasets}, {"chunk_count", m.chunk_count},
          {"chunk_size", m.chunk_size}, {"entries", m.entries.size()}, {"tokens", tokens}};
}

json tensors_json(const Imatrix& m, const StatsByName& stats, const ReportOptions& opt) {
  json out = json::array();
  for (const auto& [name, e] : m.entries) {
    const TensorStatistics& st = *stats.at(name);
    json t = {{"name", name}, {"layer", st.layer}, {"kind", st.kind}, {"slots", e.counts.size()},
              {"ne0", e.sums.size() / e.counts.size()}, {"zero_slots", st.n_empty}, {"stats", nullptr}};
    size_t nonfinite = 0;
    for (float v : e.sums) nonfinite += !std::isfinite(v);
    t["nonfinite"] = nonfinite;
    json cj = json::array();
    for (float c : e.counts) cj.push_back(num(c, 9));
    t["counts"] = std::move(cj);
    if (st.n > 0) {
      t["stats"] = stats_json(st);
      t["maxmean"] = st.mean > 0 ? num(st.max / st.mean) : json(nullptr);
    }
    t["hist"] = distribution(finite_columns(e), opt, t);
    out.push_back(std::move(t));
  }
  return out;
}

// Tokens per expert per layer, from the first expert tensor of each block.
json experts_json(const Imatrix& m, const StatsByName& stats, json& warnings) {
  std::map<int, std::vector<std::pair<std::string, const Entry*>>> by_layer;
  auto kind_of = [&](const std::string& name) { return stats.at(name)->kind; };
  for (const auto& [name, e] : m.entries) {
    std::string k = kind_of(name);
    if (e.counts.size() > 1 && k.size() > 5 && k.ends_with("_exps"))
      by_layer[stats.at(name)->layer].push_back({name, &e});
  }
  if (by_layer.empty()) return nullptr;
  const std::vector<std::string> pref = {"ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"};
  size_t n_expert = 0;
  json layers = json::array();
  for (auto& [layer, list] : by_layer) {
    std::stable_sort(list.begin(), list.end(), [&](const auto& x, const auto& y) {
      auto rank = [&](const std::string& n) {
        return std::find(pref.begin(), pref.end(), kind_of(n)) - pref.begin();
      };
      return rank(x.first) < rank(y.first);
    });
    const auto& [name, e] = list.front();
    for (size_t i = 1; i < list.size(); ++i)
      if (list[i].second->counts != e->counts)
        add_warning(warnings, 0, "warn", list[i].first,
                    fmt::format("expert token counts differ from {}", name));
    n_expert = std::max(n_expert, e->counts.size());
    json c = json::array();
    for (float v : e->counts) c.push_back(num(v, 9));
    layers.push_back({{"layer", layer}, {"tensor", name}, {"counts", std::move(c)}});
  }
  return {{"n_expert", n_expert}, {"layers", std::move(layers)}};
}

// Cosine similarity of the per-column importance over the slots that saw tokens in both.
double importance_cos(const Entry& a, const Entry& b) {
  const size_t n = a.sums.size() / a.counts.size();
  double dot = 0, na = 0, nb = 0;
  for (size_t k = 0; k < a.counts.size(); ++k) {
    if (!(a.counts[k] > 0 && b.counts[k] > 0)) continue;
    for (size_t j = 0; j < n; ++j) {
      double x = a.sums[k * n + j] / a.counts[k], y = b.sums[k * n + j] / b.counts[k];
      dot += x * y, na += x * x, nb += y * y;
    }
  }
  return na > 0 && nb > 0 ? dot / std::sqrt(na * nb) : NAN;
}

json compare_json(const Imatrix& a, const Imatrix& b, const StatsByName& sa_by_name,
                  const ReportOptions& opt) {
  const Statistics stats_b = compute_statistics(b);
  const StatsByName sb_by_name = by_name(stats_b);
  json rows = json::array(), only_a = json::array(), only_b = json::array();
  for (const auto& [name, ea] : a.entries) {
    auto it = b.entries.find(name);
    if (it == b.entries.end()) { only_a.push_back(name); continue; }
    const Entry& eb = it->second;
    if (ea.sums.size() != eb.sums.size() || ea.counts.size() != eb.counts.size())
      throw_error("cannot compare {} with {}: {} has {} values in {} slots in the first but {} in {} "
                  "in the second (different models?)", opt.name_a, opt.name_b, name, ea.sums.size(),
                  ea.counts.size(), eb.sums.size(), eb.counts.size());
    const TensorStatistics& sa = *sa_by_name.at(name);
    const TensorStatistics& sb = *sb_by_name.at(name);
    json r = {{"name", name}, {"layer", sa.layer}, {"kind", sa.kind}};
    r["mean_a"] = sa.n ? num(sa.mean) : json(nullptr);
    r["mean_b"] = sb.n ? num(sb.mean) : json(nullptr);
    r["ratio"] = sa.n && sb.n && sa.mean > 0 ? num(sb.mean / sa.mean) : json(nullptr);
    r["cos"] = num(importance_cos(ea, eb));
    rows.push_back(std::move(r));
  }
  for (const auto& [name, eb] : b.entries)
    if (!a.entries.count(name)) only_b.push_back(name);
  if (rows.empty())
    throw_error("cannot compare {} with {}: no tensor name in common (different models?)",
                opt.name_a, opt.name_b);
  // Files of one model share (nearly) all names; a few may differ (output.weight, experts a
  // legacy file skipped). Less than half of all names in common means another model.
  const size_t n_union = rows.size() + only_a.size() + only_b.size();
  if (2 * rows.size() < n_union)
    throw_error("cannot compare {} with {}: only {} of {} tensor names in common (different models?)",
                opt.name_a, opt.name_b, rows.size(), n_union);
  return {{"name", opt.name_b}, {"rows", std::move(rows)}, {"only_a", std::move(only_a)},
          {"only_b", std::move(only_b)}};
}

}  // namespace

std::string report_json(const Imatrix& a, const Imatrix* b, const ReportOptions& opt) {
  if (opt.max_points < 4 || opt.hist_bins < 1)
    throw_error("report: max_points must be >= 4 and hist_bins >= 1");
  validate(a, opt.name_a, /*allow_non_finite=*/true);
  if (b) validate(*b, opt.name_b, /*allow_non_finite=*/true);
  const Statistics stats = compute_statistics(a);
  const StatsByName stats_a = by_name(stats);
  json j;
  j["version"] = 1;
  j["files"] = json::array({file_json(a, opt.name_a)});
  json warnings = json::array();
  file_warnings(a, 0, warnings);
  std::set<std::string> kinds;
  std::set<int> layers;
  for (const auto& t : stats.tensors) kinds.insert(t.kind), layers.insert(t.layer);
  j["kinds"] = ordered_kinds(kinds);
  j["layers"] = std::vector<int>(layers.begin(), layers.end());
  j["tensors"] = tensors_json(a, stats_a, opt);
  j["experts"] = experts_json(a, stats_a, warnings);
  j["compare"] = nullptr;
  if (b) {
    j["compare"] = compare_json(a, *b, stats_a, opt);
    j["files"].push_back(file_json(*b, opt.name_b));
    file_warnings(*b, 1, warnings);
  }
  j["warnings"] = std::move(warnings);
  // Safe inside <script>: no "<" at all (JSON allows \u003c in strings, the only place it occurs).
  std::string s = j.dump(-1, ' ', false, json::error_handler_t::replace);
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '<') out += "\\u003c";
    else out += c;
  }
  return out;
}

}  // namespace imq::imatrix
