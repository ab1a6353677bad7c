#include "imatrix/collector.h"

#include <cmath>

#include "kernels/vec.h"

namespace imq::imatrix {

namespace {
constexpr int64_t kMinDenseRows = 16;  // llama-imatrix ignores smaller dense micro-batches
}

Collector::Collector(Imatrix totals, bool process_output, const volatile std::sig_atomic_t* stop)
    : totals_(std::move(totals)), process_output_(process_output), stop_(stop) {}

bool Collector::wanted(std::string_view weight, bool is_expert, int64_t n_rows, bool process_output) {
  if (is_expert) return true;  // MUL_MAT_ID: always, whatever the name or size
  if (n_rows < kMinDenseRows) return false;
  return weight.starts_with("blk.") || (process_output && weight == "output.weight");
}

void Collector::on_matmul(const MatmulEvent& e) {
  if (stop_ && *stop_) throw CollectionStopped{};
  const bool expert = e.expert >= 0;
  if (!wanted(e.weight, expert, e.n_rows, process_output_) || e.n_rows <= 0) return;
  auto it = chunk_.find(e.weight);
  const bool inserted = it == chunk_.end();
  if (inserted) it = chunk_.emplace(std::string(e.weight), Accumulator{}).first;
  Accumulator& a = it->second;
  const int64_t n_slots = expert ? e.n_expert : 1;
  if (inserted) {
    a.ne0 = e.ne0;
    a.sums.assign(size_t(n_slots * e.ne0), 0.0);
    a.counts.assign(size_t(n_slots), 0);
  } else if (a.ne0 != e.ne0 || int64_t(a.counts.size()) != n_slots) {
    throw_error("{}: inconsistent shapes between matmuls ({} x {} slots, then {} x {})", e.weight, a.ne0,
                a.counts.size(), e.ne0, n_slots);
  }
  const int64_t slot = expert ? e.expert : 0;
  if (slot >= n_slots) throw_error("{}: expert {} of {}", e.weight, slot, n_slots);
  double* s = a.sums.data() + slot * a.ne0;
  const int64_t ne0 = a.ne0;
  kernels::add_squares(e.x, e.n_rows, ne0, s);
  a.counts[size_t(slot)] += e.n_rows;
  a.touched = true;
  for (int64_t j = 0; j < ne0; ++j)
    if (!std::isfinite(s[j])) [[unlikely]] {
      std::string where = expert ? fmt::format(" (expert {})", e.expert) : std::string();
      throw NonFiniteActivations(fmt::format("chunk {}: the input of {}{} holds NaN or Inf (column {})",
                                             chunk_index_, e.weight, where, j));
    }
}

void Collector::end_chunk() {
  // Check every size before changing anything.
  for (const auto& [name, a] : chunk_) {
    if (!a.touched) continue;
    auto it = totals_.entries.find(name);
    if (it == totals_.entries.end()) continue;
    const Entry& t = it->second;
    if (t.sums.size() != a.sums.size() || (t.counts.size() != a.counts.size() && t.counts.size() != 1))
      throw_error("tensor {}: the imatrix continued has {} values in {} slots, the model's has {} in {}",
                  name, t.sums.size(), t.counts.size(), a.sums.size(), a.counts.size());
  }
  for (auto& [name, a] : chunk_) {
    if (!a.touched) continue;
    Entry& t = totals_.entries[name];
    if (t.sums.empty()) {
      t.sums.assign(a.sums.size(), 0.0f);
      t.counts.assign(a.counts.size(), 0.0f);
    }
    if (t.counts.size() == 1 && a.counts.size() > 1) t.counts.assign(a.counts.size(), t.counts[0]);
    for (size_t i = 0; i < a.sums.size(); ++i) t.sums[i] += float(a.sums[i]);
    for (size_t k = 0; k < a.counts.size(); ++k) t.counts[k] += float(a.counts[k]);
  }
  drop_chunk();
  ++chunk_index_;
}

void Collector::drop_chunk() {
  for (auto& [name, a] : chunk_) {
    if (!a.touched) continue;
    std::fill(a.sums.begin(), a.sums.end(), 0.0);
    std::fill(a.counts.begin(), a.counts.end(), 0);
    a.touched = false;
  }
}

}  // namespace imq::imatrix
