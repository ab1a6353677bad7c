#include "gptq/hessian.h"

#include <cblas.h>

#include <algorithm>

#include "core/thread_pool.h"
#include "imq/error.h"

namespace imq::gptq {

namespace {
constexpr int64_t kTile = 64;  // columns of c per SGEMM
}

void add_at_b(const float* a, int64_t na, const float* b, int64_t nb, int64_t rows, float* c,
              bool upper, ThreadPool* pool) {
  if (rows <= 0) return;
  if (upper && na != nb) throw_error("add_at_b: a triangle of a {}x{} product", na, nb);
  const int64_t tiles = (nb + kTile - 1) / kTile;
  auto tile = [&](int64_t t) {
    const int64_t j0 = t * kTile, w = std::min(kTile, nb - j0);
    const int64_t m = upper ? j0 + w : na;  // rows of c: the triangle needs those above j1 only
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(m), int(w), int(rows), 1.0f, a,
                int(na), b + j0, int(nb), 1.0f, c + j0, int(nb));
  };
  // Triangle tiles grow with t: tile t goes with tile tiles-1-t so that the pairs cost alike.
  const int64_t units = upper ? (tiles + 1) / 2 : tiles;
  auto run = [&](size_t u0, size_t u1, int) {
    for (int64_t u = int64_t(u0); u < int64_t(u1); ++u) {
      tile(u);
      if (upper && tiles - 1 - u != u) tile(tiles - 1 - u);
    }
  };
  if (pool)
    pool->parallel_for(size_t(units), run);
  else
    run(0, size_t(units), 0);
}

void add_at_b(const float* a, const float* b, int64_t rows, int64_t n, float* c, bool upper,
              ThreadPool* pool) {
  add_at_b(a, n, b, n, rows, c, upper, pool);
}

void Hessian::add(const float* x, int64_t rows, ThreadPool* pool) {
  add_at_b(x, x, rows, n, h.data(), true, pool);
  tokens += std::max<int64_t>(rows, 0);
}

std::vector<double> Hessian::full() const {
  std::vector<double> out(size_t(n * n));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i; j < n; ++j)
      out[size_t(i * n + j)] = out[size_t(j * n + i)] = double(h[size_t(i * n + j)]);
  return out;
}

std::vector<double> Hessian::diagonal() const {
  std::vector<double> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out[size_t(i)] = h[size_t(i * n + i)];
  return out;
}

std::vector<float> Hessian::mean_square() const {
  std::vector<float> out(size_t(n), 0.0f);
  if (tokens > 0)
    for (int64_t i = 0; i < n; ++i) out[size_t(i)] = h[size_t(i * n + i)] / float(tokens);
  return out;
}

void HessianObserver::on_matmul(const MatmulEvent& e) {
  if (!names_.contains(e.weight)) return;
  auto key = std::make_pair(std::string(e.weight), e.expert);
  auto it = h_.find(key);
  if (it == h_.end()) it = h_.emplace(key, Hessian(e.ne0)).first;
  it->second.add(e.x, e.n_rows, pool_);
}

void PairedObserver::watch(const std::string& weight, int64_t n, const float* w, int64_t rows) {
  Entry& e = e_[weight];
  e.h = Hessian(n);
  e.w = w;
  e.w_rows = w ? rows : 0;
  e.g.assign(size_t((w ? rows : n) * n), 0.0f);
}

PairedObserver::Entry& PairedObserver::entry(const std::string& weight) {
  const auto it = e_.find(weight);
  if (it == e_.end()) throw_error("{}: not observed", weight);
  return it->second;
}

void PairedObserver::capture(bool on) {
  capturing_ = on;
  for (auto& [name, e] : e_) {
    if (on) e.rows.clear();
    e.used = 0;
  }
}

void PairedObserver::on_matmul(const MatmulEvent& ev) {
  if (ev.expert >= 0) return;
  const auto it = e_.find(ev.weight);
  if (it == e_.end()) return;
  Entry& e = it->second;
  const int64_t n = e.h.n;
  if (ev.ne0 != n) throw_error("{}: inputs of {} columns, expected {}", ev.weight, ev.ne0, n);
  const size_t count = size_t(ev.n_rows * n);
  if (capturing_) {
    e.rows.insert(e.rows.end(), ev.x, ev.x + count);
    return;
  }
  if (e.used + count > e.rows.size())
    throw_error("{}: the quantized run has more input rows than the full-precision run", ev.weight);
  diff_.resize(count);
  for (size_t i = 0; i < count; ++i) diff_[i] = e.rows[e.used + i] - ev.x[i];
  e.used += count;
  e.h.add(ev.x, ev.n_rows, pool_);
  if (!e.w) {
    add_at_b(diff_.data(), ev.x, ev.n_rows, n, e.g.data(), false, pool_);
    return;
  }
  // W Dᵀ X̃ = (D Wᵀ)ᵀ X̃: D Wᵀ [n_rows, w_rows] in fixed column tiles, then its transpose times X̃.
  const int64_t t = ev.n_rows, r = e.w_rows;
  dw_.resize(size_t(t * r));
  const int64_t tiles = (r + kTile - 1) / kTile;
  auto run = [&](size_t u0, size_t u1, int) {
    for (int64_t u = int64_t(u0); u < int64_t(u1); ++u) {
      const int64_t j0 = u * kTile, w = std::min(kTile, r - j0);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(t), int(w), int(n), 1.0f,
                  diff_.data(), int(n), e.w + j0 * n, int(n), 0.0f, dw_.data() + j0, int(r));
    }
  };
  if (pool_)
    pool_->parallel_for(size_t(tiles), run);
  else
    run(0, size_t(tiles), 0);
  add_at_b(dw_.data(), r, ev.x, n, t, e.g.data(), false, pool_);
}

}  // namespace imq::gptq
