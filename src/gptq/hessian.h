// Second moments of the inputs of weight matrices, H = sum over tokens of x xᵀ, as the forward
// pass shows them through the matmul observer (imq/observer.h). One H per (weight, expert):
// q/k/v see the same input, but each keeps its own so that any subset can be asked for.
#pragma once
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "imq/observer.h"

namespace imq::gptq {

struct Hessian {
  int64_t n = 0;
  std::vector<float> h;  // [n, n] upper triangle accumulated (row-major), see full()
  int64_t tokens = 0;

  explicit Hessian(int64_t n_ = 0) : n(n_), h(size_t(n_ * n_), 0.0f) {}
  // h += xᵀx for rows of x [rows, n] (float products, float accumulation as SSYRK).
  void add(const float* x, int64_t rows);
  // The symmetric matrix in double.
  std::vector<double> full() const;
  // diag(H) / tokens: the imatrix value of each column (0 without tokens).
  std::vector<float> mean_square() const;
};

// Accumulates H for the weights it is told to watch; expert -1 is a dense weight.
class HessianObserver : public MatmulObserver {
 public:
  void watch(const std::string& weight) { names_.insert(weight); }
  void on_matmul(const MatmulEvent& e) override;
  std::map<std::pair<std::string, int32_t>, Hessian>& hessians() { return h_; }

 private:
  std::set<std::string, std::less<>> names_;
  std::map<std::pair<std::string, int32_t>, Hessian> h_;
};

// The inputs of one dense weight in two runs over the same tokens: the full-precision model
// (capture) and the model with everything before the weight quantized (paired). The paired run
// accumulates H = X̃ᵀX̃ and G = (X − X̃)ᵀX̃, from which the weight that best maps the quantized
// run's inputs to the full-precision outputs follows (solver.h, corrected_target).
class PairedObserver : public MatmulObserver {
 public:
  PairedObserver(std::string weight, int64_t n) : name_(std::move(weight)), h_(n), g_(size_t(n * n), 0.0f) {}
  // Capturing: the full-precision rows of the next chunk are recorded.
  void capture(bool on) {
    capturing_ = on;
    if (on) rows_.clear();
    used_ = 0;
  }
  void on_matmul(const MatmulEvent& e) override;
  Hessian& hessian() { return h_; }
  const std::vector<float>& cross() const { return g_; }

 private:
  std::string name_;
  Hessian h_;
  std::vector<float> g_, rows_, diff_;
  bool capturing_ = false;
  size_t used_ = 0;  // paired rows consumed from rows_
};

}  // namespace imq::gptq
