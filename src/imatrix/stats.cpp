// llama-imatrix --show-statistics (spec d): per tensor, statistics of the mean squared
// activations a = sum / count over the slots that saw tokens; per layer, N-weighted averages.
// Every reduction is a float accumulation in element order, as the reference tool does, so
// that the printed digits agree.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <numeric>

#include "imq/imatrix.h"

namespace imq::imatrix {

namespace {

// "blk.12.attn_q.weight" -> 12; -1 outside blocks.
int block_of(const std::string& name) {
  if (!name.starts_with("blk.")) return -1;
  const size_t end = name.find('.', 4);
  if (end == std::string::npos || end == 4) return -1;
  int v = -1;
  auto [p, ec] = std::from_chars(name.data() + 4, name.data() + end, v);
  return ec == std::errc() && p == name.data() + end && v >= 0 ? v : -1;
}

// The component immediately before "weight" ("attn_q"); the full name if none.
std::string kind_before_weight(const std::string& name) {
  std::string prev;
  size_t start = 0;
  for (;;) {
    const size_t dot = name.find('.', start);
    std::string part = name.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (part == "weight" && !prev.empty()) return prev;
    if (dot == std::string::npos) return name;
    prev = std::move(part);
    start = dot + 1;
  }
}

// The same tensor one block earlier, "" for block 0 and non-block tensors.
std::string previous_block(const std::string& name, int layer) {
  if (layer <= 0) return "";
  return "blk." + std::to_string(layer - 1) + name.substr(name.find('.', 4));
}

float cosine(const std::vector<float>& x, const std::vector<float>& y) {
  if (x.size() != y.size()) return 0.0f;
  const float dot = std::inner_product(x.begin(), x.end(), y.begin(), 0.0f);
  const float nx = std::sqrt(std::inner_product(x.begin(), x.end(), x.begin(), 0.0f));
  const float ny = std::sqrt(std::inner_product(y.begin(), y.end(), y.begin(), 0.0f));
  return nx > 0 && ny > 0 ? dot / (nx * ny) : 0.0f;
}

TensorStatistics tensor_statistics(const std::string& name, const Entry& e, const Entry* prev) {
  TensorStatistics t;
  t.name = name;
  t.layer = block_of(name);
  t.kind = kind_before_weight(name);
  t.n_slots = e.counts.size();
  const size_t per_slot = e.sums.size() / e.counts.size();
  std::vector<float> a;
  a.reserve(e.sums.size());
  for (size_t k = 0; k < e.counts.size(); ++k) {
    if (e.counts[k] <= 0) {
      ++t.n_empty;
      continue;
    }
    for (size_t j = 0; j < per_slot; ++j) {
      const float v = e.sums[k * per_slot + j] / e.counts[k];
      if (std::isfinite(v))
        a.push_back(v);
      else
        ++t.n_non_finite;
    }
  }
  t.n = int64_t(a.size());
  if (a.empty()) return t;  // no data: every number stays 0

  const float n = float(a.size());
  t.sum = std::accumulate(a.begin(), a.end(), 0.0f);
  t.min = *std::min_element(a.begin(), a.end());
  t.max = *std::max_element(a.begin(), a.end());
  t.mean = t.sum / n;
  const float sq = std::inner_product(a.begin(), a.end(), a.begin(), 0.0f);
  t.stddev = std::sqrt(std::max(0.0f, sq / n - t.mean * t.mean));
  const auto inactive = std::count_if(a.begin(), a.end(), [](float v) { return std::fabs(v) <= 1e-5f; });
  t.active = 100.0f * (1.0f - float(inactive) / n);
  if (t.sum > 0) {
    float h = 0.0f;
    for (float v : a) {
      const float p = v / t.sum;
      if (p > 0) h -= p * std::log2(p);
    }
    t.entropy = h;
  }
  t.entropy_norm = a.size() > 1 ? 100.0f * t.entropy / std::log2(n) : 0.0f;
  if (t.stddev > 0) {
    const auto above = std::count_if(a.begin(), a.end(), [&](float v) { return (v - t.mean) / t.stddev > 1.0f; });
    t.zd = float(above) / n;
  }
  if (prev) t.cossim = cosine(e.sums, prev->sums);
  return t;
}

}  // namespace

Statistics compute_statistics(const Imatrix& m) {
  Statistics s;
  for (const auto& [name, e] : m.entries) {
    const std::string p = previous_block(name, block_of(name));
    auto it = p.empty() ? m.entries.end() : m.entries.find(p);
    s.tensors.push_back(tensor_statistics(name, e, it == m.entries.end() ? nullptr : &it->second));
  }
  std::stable_sort(s.tensors.begin(), s.tensors.end(), [](const TensorStatistics& a, const TensorStatistics& b) {
    if (a.kind != b.kind) return a.kind < b.kind;
    return a.sum > b.sum;
  });

  struct Acc { float w = 0, sum = 0, zd = 0, cos = 0; };
  std::map<int, Acc> layers;
  for (const auto& t : s.tensors) {
    if (t.layer < 0 || t.n == 0) continue;
    Acc& acc = layers[t.layer];
    const float w = float(t.n);
    acc.w += w;
    acc.sum += w * t.sum;
    acc.zd += w * t.zd;
    acc.cos += w * t.cossim;
  }
  for (const auto& [layer, acc] : layers)
    s.layers.push_back({layer, acc.sum / acc.w, acc.zd / acc.w, acc.cos / acc.w});
  return s;
}

}  // namespace imq::imatrix
