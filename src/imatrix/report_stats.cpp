#include "imatrix/report_stats.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <vector>

namespace imq::imatrix {

int layer_of(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return -1;
  size_t end = name.find('.', 4);
  if (end == std::string::npos || end == 4) return -1;
  int v = 0;
  auto [p, ec] = std::from_chars(name.data() + 4, name.data() + end, v);
  if (ec != std::errc() || p != name.data() + end || v < 0) return -1;
  return v;
}

std::string kind_of(const std::string& name) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    size_t dot = name.find('.', start);
    parts.push_back(name.substr(start, dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  for (size_t i = 1; i < parts.size(); ++i)
    if (parts[i] == "weight") return parts[i - 1];
  return name;
}

std::string previous_block_name(const std::string& name) {
  int layer = layer_of(name);
  if (layer <= 0) return "";
  size_t end = name.find('.', 4);
  return "blk." + std::to_string(layer - 1) + name.substr(end);
}

std::optional<TensorStats> tensor_stats(const Entry& e, const Entry* previous_block) {
  if (e.counts.empty() || e.sums.size() % e.counts.size() != 0) return std::nullopt;
  const size_t n_slot = e.sums.size() / e.counts.size();
  std::vector<float> a;
  a.reserve(e.sums.size());
  for (size_t k = 0; k < e.counts.size(); ++k) {
    if (e.counts[k] <= 0) continue;
    for (size_t j = 0; j < n_slot; ++j) a.push_back(e.sums[k * n_slot + j] / e.counts[k]);
  }
  if (a.empty()) return std::nullopt;

  // Float accumulation in element order, as the reference tool does.
  TensorStats s;
  s.n = static_cast<int64_t>(a.size());
  const float n = static_cast<float>(a.size());
  float sum = 0, sum2 = 0;
  for (float v : a) sum += v;
  for (float v : a) sum2 += v * v;
  s.sum = sum;
  s.min = *std::min_element(a.begin(), a.end());
  s.max = *std::max_element(a.begin(), a.end());
  s.mean = sum / n;
  s.stddev = std::sqrt(std::max(0.0f, sum2 / n - s.mean * s.mean));
  size_t inactive = std::count_if(a.begin(), a.end(), [](float v) { return std::fabs(v) <= 1e-5f; });
  s.active = 100.0f * (1.0f - static_cast<float>(inactive) / n);
  if (sum > 0) {
    float h = 0;
    for (float v : a) {
      float p = v / sum;
      if (p > 0) h -= p * std::log2(p);
    }
    s.entropy = h;
  }
  s.entropy_norm = a.size() > 1 ? 100.0f * s.entropy / std::log2(n) : 0.0f;
  if (s.stddev > 0) {
    size_t z = std::count_if(a.begin(), a.end(),
                             [&](float v) { return (v - s.mean) / s.stddev > 1.0f; });
    s.zd = 100.0f * static_cast<float>(z) / n;
  }
  if (previous_block && previous_block->sums.size() == e.sums.size()) {
    float dot = 0, na = 0, nb = 0;
    for (size_t i = 0; i < e.sums.size(); ++i) {
      dot += e.sums[i] * previous_block->sums[i];
      na += e.sums[i] * e.sums[i];
      nb += previous_block->sums[i] * previous_block->sums[i];
    }
    s.cossim = (na > 0 && nb > 0) ? dot / (std::sqrt(na) * std::sqrt(nb)) : 0.0f;
  }
  return s;
}

}  // namespace imq::imatrix
