// Printing statistics: llama-imatrix's tab-separated tables (same printf formats, so the two
// outputs can be diffed) and a JSON document for scripts.
#include <nlohmann/json.hpp>

#include <fmt/format.h>
#include <fmt/printf.h>

#include "imq/imatrix.h"

namespace imq::imatrix {

std::string format_statistics(const Statistics& s, const std::string& file_name) {
  std::string out = fmt::format("\nComputing statistics for {} ({} tensors)\n\n", file_name, s.tensors.size());
  out +=
      " Layer\t       Tensor\t          Σ(Act²)\t  Min\t            Max\t           μ\t   σ\t % Active\tN\t"
      "   Entropy\tE (norm)\tZD\t  CosSim\n";
  out += std::string(169, '=') + "\n";
  for (const auto& t : s.tensors) {
    const std::string layer = t.layer >= 0 ? std::to_string(t.layer) : "-";
    if (t.n == 0) {
      out += fmt::sprintf("%5s\t%-20s\t%10s\t(no data: every count is 0)\n", layer, t.kind, "-");
      continue;
    }
    out += fmt::sprintf("%5s\t%-20s\t%10.2f\t%8.4f\t%11.4f\t%6.2f\t%6.2f\t%8.2f%%\t%6d\t%10.4f\t%6.2f%%\t%10.2f%%\t%8.4f\n",
                        layer, t.kind, t.sum, t.min, t.max, t.mean, t.stddev, t.active, t.n, t.entropy,
                        t.entropy_norm, 100.0f * t.zd, t.cossim);
  }
  out += fmt::format("\nComputing weighted average statistics per layer ({} layers)\n\n", s.layers.size());
  out += "  Layer\t     μΣ(Act²)\t      μZD\tμCosSim\n";
  out += std::string(48, '=') + "\n";
  for (const auto& l : s.layers)
    out += fmt::sprintf("%5d\t%14.2f\t%10.4f%%\t%6.4f\n", l.layer, l.sum, 100.0f * l.zd, l.cossim);
  out += "\n";
  return out;
}

std::string statistics_json(const Statistics& s, const Imatrix& m, const std::string& file_name) {
  using json = nlohmann::ordered_json;
  json tensors = json::array();
  for (const auto& t : s.tensors) {
    json j = {{"name", t.name},
              {"layer", t.layer >= 0 ? json(t.layer) : json(nullptr)},
              {"kind", t.kind},
              {"n", t.n},
              {"slots", t.n_slots},
              {"empty_slots", t.n_empty},
              {"non_finite", t.n_non_finite}};
    if (t.n > 0) {
      j.update({{"sum_act2", t.sum},
                {"min", t.min},
                {"max", t.max},
                {"mean", t.mean},
                {"stddev", t.stddev},
                {"active_pct", t.active},
                {"entropy", t.entropy},
                {"entropy_norm_pct", t.entropy_norm},
                {"zd_pct", 100.0f * t.zd},
                {"cossim", t.cossim}});
    }
    tensors.push_back(std::move(j));
  }
  json layers = json::array();
  for (const auto& l : s.layers)
    layers.push_back({{"layer", l.layer}, {"sum_act2", l.sum}, {"zd_pct", 100.0f * l.zd}, {"cossim", l.cossim}});
  json warnings = json::array();
  for (const auto& c : coverage_issues(m)) warnings.push_back(describe(c));
  json doc = {{"file", file_name},
              {"datasets", m.datasets},
              {"chunk_count", m.chunk_count},
              {"chunk_size", m.chunk_size},
              {"tensors", std::move(tensors)},
              {"layers", std::move(layers)},
              {"warnings", std::move(warnings)}};
  return doc.dump(1) + "\n";
}

}  // namespace imq::imatrix
