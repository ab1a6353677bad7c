#include "quant/grid.h"

#include <cmath>

namespace imq::quant {

int BlockGrid::nearest(int i, float x) const {
  const float s = step[i];
  if (s == 0 || !std::isfinite(s)) return q[i];
  const float t = (x - offset[i]) / s;
  if (!levels) {
    const float r = std::nearbyint(t);
    const float c = r < float(qmin) ? float(qmin) : r > float(qmax) ? float(qmax) : r;
    return int(c);
  }
  int best = qmin;
  float best_d = INFINITY;
  for (int c = qmin; c <= qmax; ++c) {
    const float d = std::fabs(t - float(levels[c - qmin]));
    if (d < best_d) best_d = d, best = c;
  }
  return best;
}

}  // namespace imq::quant
