// Random weight rows and column importance for the codec tests and benchmarks, drawn one way
// everywhere so that the bounds measured on them (and any bytes a test pins) stay valid.
// Header-only; tests/common has no .cpp, so no test target. The benchmarks include it too.
#pragma once
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace imq::test {

struct RandomRows {
  std::vector<float> x;           // [rows * cols], row-major
  std::vector<float> importance;  // [cols]
};

struct RandomRowsSpec {
  uint32_t seed;
  int64_t rows, cols;
  float sigma = 1;       // x ~ N(0, sigma)
  float tail_scale = 0;  // > 0: one value in 16 is tail_scale * t(3) instead (a trained layer's tail)
};

// One std::mt19937 seeded with spec.seed draws x in order, then the importance: exp(4 U(0, 1)),
// spread over e^0 .. e^4. The order of the draws is part of the contract: changing it changes
// every value.
inline RandomRows random_rows(const RandomRowsSpec& spec) {
  std::mt19937 rng(spec.seed);
  std::normal_distribution<float> normal(0, spec.sigma);
  std::student_t_distribution<float> tail(3);
  std::uniform_real_distribution<float> uniform(0, 1);
  RandomRows r;
  r.x.resize(size_t(spec.rows * spec.cols));
  if (spec.tail_scale > 0) {
    for (auto& v : r.x) v = uniform(rng) < 1.0f / 16 ? spec.tail_scale * tail(rng) : normal(rng);
  } else {
    for (auto& v : r.x) v = normal(rng);
  }
  r.importance.resize(size_t(spec.cols));
  for (auto& v : r.importance) v = std::exp(4 * uniform(rng));
  return r;
}

}  // namespace imq::test
