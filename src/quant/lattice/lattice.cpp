#include "quant/lattice/lattice.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <utility>

#include "imq/error.h"
#include "quant/legacy/search.h"

namespace imq::quant {

Lattice::Lattice(std::span<const uint16_t> grid, int dim, int bits, int n_levels, int shells)
    : dim_(dim), bits_(bits) {
  const int n = int(grid.size());
  const uint32_t mask = (1u << bits) - 1;
  points_.resize(size_t(n) * size_t(dim));
  for (int g = 0; g < n; ++g)
    for (int i = 0; i < dim; ++i) points_[size_t(g * dim + i)] = int8_t(2 * ((grid[size_t(g)] >> (bits * i)) & mask) + 1);

  // Codes with a level >= n_levels are never looked up: they stay INT32_MIN (no list).
  slot_.assign(size_t(1) << (bits * dim), INT32_MIN);
  for (int g = 0; g < n; ++g) slot_[grid[size_t(g)]] = g;

  std::vector<std::pair<int, int>> by_distance(static_cast<size_t>(n));  // (d2, grid index)
  int8_t pos[16];
  for (uint32_t code = 0; code < slot_.size(); ++code) {
    if (slot_[code] >= 0) continue;
    bool searched = true;
    for (int i = 0; i < dim; ++i) {
      const int l = int((code >> (bits * i)) & mask);
      searched = searched && l < n_levels;
      pos[i] = int8_t(2 * l + 1);
    }
    if (!searched) continue;
    for (int g = 0; g < n; ++g) {
      int d2 = 0;
      for (int i = 0; i < dim; ++i) d2 += (point(g)[i] - pos[i]) * (point(g)[i] - pos[i]);
      by_distance[size_t(g)] = {d2, g};
    }
    std::sort(by_distance.begin(), by_distance.end());
    // Every point of the first `shells` distinct distances, in (distance, index) order.
    const size_t start = neighbours_.size();
    neighbours_.push_back(0);
    int shell = 1, d2 = by_distance[0].first;
    for (const auto& [d, g] : by_distance) {
      if (d > d2) {
        if (shell == shells) break;
        d2 = d, ++shell;
      }
      neighbours_.push_back(uint16_t(g));
    }
    neighbours_[start] = uint16_t(neighbours_.size() - start - 1);
    slot_[code] = -int32_t(start) - 1;
  }
}

int Lattice::nearest(uint32_t code, const float* x, const float* w, float scale, int8_t* l,
                     const float* value) const {
  if (code >= slot_.size() || slot_[code] >= 0 || slot_[code] == INT32_MIN)
    throw_error("lattice search: point {:#x} has no neighbour list", code);
  const uint16_t* list = neighbours_.data() + (-slot_[code] - 1);
  float best_d2 = FLT_MAX;
  int best = list[1];
  for (int j = 1; j <= list[0]; ++j) {
    const int8_t* q = point(list[j]);
    float d2 = 0;
    for (int i = 0; i < dim_; ++i) {
      const float diff = scale * (value ? value[(q[i] - 1) / 2] : float(q[i])) - x[i];
      d2 += w[i] * diff * diff;
    }
    if (d2 < best_d2) best_d2 = d2, best = list[j];
  }
  for (int i = 0; i < dim_; ++i) l[i] = int8_t((point(best)[i] - 1) / 2);
  return best;
}

bool Lattice::round(const float* x, const float* w, float id, float scale, int max_level, int8_t* l) const {
  for (int i = 0; i < dim_; ++i) l[i] = int8_t(std::clamp(nearest_int(0.5f * (id * x[i] - 1)), 0, max_level));
  const uint32_t u = pack(l);
  if (find(u) >= 0) return true;
  nearest(u, x, w, scale, l);
  return false;
}

void fit_sums(int n, const float* x, const float* w, const int8_t* L, float* sumqx, float* sumq2) {
  float qx = 0, q2 = 0;
  for (int i = 0; i < n; ++i) {
    const float q = float(2 * L[i] + 1);
    qx += w[i] * x[i] * q;
    q2 += w[i] * q * q;
  }
  *sumqx = qx, *sumq2 = q2;
}

float trial_search(const Lattice& lat, const TrialSearch& p, int n, const float* xval, const float* w,
                   const float* waux, float max, int8_t* L) {
  const int dim = lat.dim(), n_groups = n / dim;
  const float q_max = float(2 * p.max_level + 1);
  bool on_grid[32];
  std::fill(L, L + n, int8_t(0));
  std::fill(on_grid, on_grid + n_groups, !p.refit_all);
  float best = 0, scale = max / q_max;
  for (int t = -p.trials; t <= p.trials; ++t) {
    const float id = (q_max + float(t) * p.step) / max;
    const float this_scale = 1 / id;
    int8_t trial[64];
    bool trial_on_grid[32];
    for (int k = 0; k < n_groups; ++k)
      trial_on_grid[k] = lat.round(xval + dim * k, waux + dim * k, id, this_scale, p.max_level, trial + dim * k);
    float sumqx, sumq2;
    fit_sums(n, xval, w, trial, &sumqx, &sumq2);
    if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
      scale = sumqx / sumq2, best = scale * sumqx;
      std::copy(trial, trial + n, L);
      std::copy(trial_on_grid, trial_on_grid + n_groups, on_grid);
    }
  }
  if (std::count(on_grid, on_grid + n_groups, false) > 0 && scale > 0) {
    const float id = 1 / scale;
    for (int k = 0; k < n_groups; ++k)
      if (p.refit_all || !on_grid[k]) lat.round(xval + dim * k, waux + dim * k, id, scale, p.max_level, L + dim * k);
    float sumqx, sumq2;
    fit_sums(n, xval, w, L, &sumqx, &sumq2);
    if (sumq2 > 0) scale = sumqx / sumq2;
  }
  return scale;
}

uint8_t fold_signs(const float* x, const float* w, float* xval) {
  int n_neg = 0;
  uint8_t s = 0;
  for (int i = 0; i < 8; ++i) {
    xval[i] = x[i] >= 0 ? x[i] : -x[i];
    if (x[i] < 0) ++n_neg, s |= uint8_t(1u << i);
  }
  if (n_neg % 2) {
    int imin = 0;
    float min = w[0] * x[0] * x[0];
    for (int i = 1; i < 8; ++i) {
      const float a = w[i] * x[i] * x[i];
      if (a < min) min = a, imin = i;
    }
    xval[imin] = -xval[imin];
    s ^= uint8_t(1u << imin);
  }
  return s & 127;
}

uint8_t round_sign_group(const Lattice& lat, bool parity, int n, const float* x, const float* w,
                         float scale, int max_level, int8_t* L) {
  if (n > 8 || n % lat.dim() != 0 || (parity && n != 8) || !(scale > 0))
    throw_error("round_sign_group: {} values in groups of {} at scale {}", n, lat.dim(), scale);
  float xval[8], waux[8];
  uint8_t s = 0;
  if (parity) {
    s = fold_signs(x, w, xval);
  } else {
    for (int i = 0; i < n; ++i) {
      xval[i] = x[i] >= 0 ? x[i] : -x[i];
      if (x[i] < 0) s |= uint8_t(1u << i);
    }
  }
  for (int i = 0; i < n; ++i) waux[i] = std::sqrt(w[i]);
  for (int k = 0; k < n; k += lat.dim()) lat.round(xval + k, waux + k, 1 / scale, scale, max_level, L + k);
  return s;
}

int round_valued_group(const Lattice& lat, const float* x, const float* w, float scale,
                       const float* value, int n_levels, int8_t* L, float* err) {
  if (!(scale > 0)) throw_error("round_valued_group: scale {}", scale);
  for (int i = 0; i < lat.dim(); ++i) {
    int best = 0;
    for (int l = 1; l < n_levels; ++l)
      if (std::fabs(scale * value[l] - x[i]) < std::fabs(scale * value[best] - x[i])) best = l;
    L[i] = int8_t(best);
  }
  const uint32_t u = lat.pack(L);
  int g = lat.find(u);
  if (g < 0) g = lat.nearest(u, x, w, scale, L, value);
  float e = 0;
  for (int i = 0; i < lat.dim(); ++i) {
    const float diff = scale * value[L[i]] - x[i];
    e += w[i] * diff * diff;
  }
  *err = e;
  return g;
}

}  // namespace imq::quant
