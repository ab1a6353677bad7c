#include "gptq/hessian.h"

#include <cblas.h>

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

}  // namespace imq::gptq
