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

namespace imq {
class ThreadPool;
}

namespace imq::gptq {

// c[n, n] += aᵀb for rows of a and b [rows, n], in column tiles shared by the pool (null: this
// thread). Each tile is one SGEMM whose shape depends on n alone, so the bits do not depend on
// the thread count. upper: only the upper triangle of c (and a little below it) is computed.
void add_at_b(const float* a, const float* b, int64_t rows, int64_t n, float* c, bool upper,
              ThreadPool* pool);
// c[na, nb] += aᵀb for a [rows, na], b [rows, nb] (upper: na == nb), tiled the same way.
void add_at_b(const float* a, int64_t na, const float* b, int64_t nb, int64_t rows, float* c,
              bool upper, ThreadPool* pool);

struct Hessian {
  int64_t n = 0;
  std::vector<float> h;  // [n, n] upper triangle accumulated (row-major), see full()
  int64_t tokens = 0;

  explicit Hessian(int64_t n_ = 0) : n(n_), h(size_t(n_ * n_), 0.0f) {}
  // h += xᵀx for rows of x [rows, n] (float products and accumulation), see add_at_b.
  void add(const float* x, int64_t rows, ThreadPool* pool = nullptr);
  // The symmetric matrix in double.
  std::vector<double> full() const;
  std::vector<double> diagonal() const;
  // diag(H) / tokens: the imatrix value of each column (0 without tokens).
  std::vector<float> mean_square() const;
};

// Accumulates H for the weights it is told to watch; expert -1 is a dense weight.
class HessianObserver : public MatmulObserver {
 public:
  explicit HessianObserver(ThreadPool* pool = nullptr) : pool_(pool) {}
  void watch(const std::string& weight) { names_.insert(weight); }
  void on_matmul(const MatmulEvent& e) override;
  std::map<std::pair<std::string, int32_t>, Hessian>& hessians() { return h_; }

 private:
  ThreadPool* pool_;
  std::set<std::string, std::less<>> names_;
  std::map<std::pair<std::string, int32_t>, Hessian> h_;
};

// The inputs of dense weights in two runs over the same tokens: the full-precision model
// (capture) and the model with everything before the weight quantized (paired). The paired run
// accumulates H = X̃ᵀX̃ and G = (X − X̃)ᵀX̃ per weight, from which the weight that best maps the
// quantized run's inputs to the full-precision outputs follows (solver.h, correct_toward).
// Runs alternate chunk by chunk: capture(true), the full-precision chunk, capture(false), the
// same chunk through the quantized model.
class PairedObserver : public MatmulObserver {
 public:
  explicit PairedObserver(ThreadPool* pool = nullptr) : pool_(pool) {}
  // w [rows, n]: instead of G [n, n], accumulate W G = (D Wᵀ)ᵀ X̃ [rows, n] (D = X − X̃), which
  // costs 4 rows n flops per token against G's 2 n², so less when rows < n / 2 (ffn_down), and
  // saves the product W G afterwards. w must outlive the observation.
  void watch(const std::string& weight, int64_t n, const float* w = nullptr, int64_t rows = 0);
  // Capturing: the full-precision rows of the next chunk are recorded.
  void capture(bool on);
  void on_matmul(const MatmulEvent& e) override;
  Hessian& hessian(const std::string& weight) { return entry(weight).h; }
  // G [n, n], or W G [rows, n] for a weight watched with its values.
  const std::vector<float>& cross(const std::string& weight) { return entry(weight).g; }

 private:
  struct Entry {
    Hessian h;
    std::vector<float> g, rows;
    size_t used = 0;  // paired rows consumed from rows
    const float* w = nullptr;
    int64_t w_rows = 0;
  };
  Entry& entry(const std::string& weight);
  ThreadPool* pool_;
  std::map<std::string, Entry, std::less<>> e_;
  std::vector<float> diff_, dw_;
  bool capturing_ = false;
};

}  // namespace imq::gptq
