#include "gptq/hessian.h"

#include <cblas.h>

#include "imq/error.h"

namespace imq::gptq {

void Hessian::add(const float* x, int64_t rows) {
  if (rows <= 0) return;
  cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, int(n), int(rows), 1.0f, x, int(n), 1.0f,
              h.data(), int(n));
  tokens += rows;
}

std::vector<double> Hessian::full() const {
  std::vector<double> out(size_t(n * n));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i; j < n; ++j)
      out[size_t(i * n + j)] = out[size_t(j * n + i)] = double(h[size_t(i * n + j)]);
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
  it->second.add(e.x, e.n_rows);
}

void PairedObserver::on_matmul(const MatmulEvent& e) {
  if (e.weight != name_ || e.expert >= 0) return;
  const int64_t n = h_.n;
  const size_t count = size_t(e.n_rows * n);
  if (capturing_) {
    rows_.insert(rows_.end(), e.x, e.x + count);
    return;
  }
  if (used_ + count > rows_.size())
    throw_error("{}: the quantized run has more input rows than the full-precision run", name_);
  diff_.resize(count);
  for (size_t i = 0; i < count; ++i) diff_[i] = rows_[used_ + i] - e.x[i];
  used_ += count;
  h_.add(e.x, e.n_rows);
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(n), int(n), int(e.n_rows), 1.0f,
              diff_.data(), int(n), e.x, int(n), 1.0f, g_.data(), int(n));
}

}  // namespace imq::gptq
