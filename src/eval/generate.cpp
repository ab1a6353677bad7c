// Sampling and the generation loop.
#include <algorithm>
#include <cmath>
#include <limits>

#include "imq/error.h"
#include "imq/eval.h"

namespace imq::eval {

Sampler::Sampler(const SamplingOptions& options)
    : o_(options), state_(options.seed * 0x9E3779B97F4A7C15ull + 0xD1B54A32D192ED03ull) {}

int32_t Sampler::sample(std::span<const float> logits) {
  const int64_t n = int64_t(logits.size());
  if (o_.temp <= 0) return int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
  cand_.clear();
  for (int64_t i = 0; i < n; ++i)
    if (logits[size_t(i)] > -std::numeric_limits<float>::infinity())
      cand_.push_back({logits[size_t(i)], int32_t(i)});
  if (cand_.empty()) throw_error("sampling: every token is banned");
  auto by_logit = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
  const size_t k = o_.top_k > 0 ? std::min(cand_.size(), size_t(o_.top_k)) : cand_.size();
  std::partial_sort(cand_.begin(), cand_.begin() + ptrdiff_t(k), cand_.end(), by_logit);
  cand_.resize(k);
  // softmax(logit / temp), highest first
  const float mx = cand_[0].first;
  double sum = 0;
  for (auto& c : cand_) sum += (c.first = std::exp((c.first - mx) / o_.temp));
  size_t keep = cand_.size();
  if (o_.top_p < 1) {
    double cum = 0;
    for (size_t i = 0; i < cand_.size(); ++i) {
      cum += cand_[i].first / sum;
      if (cum >= o_.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  double total = 0;
  for (size_t i = 0; i < keep; ++i) total += cand_[i].first;
  // xorshift64* draw in [0, total)
  state_ ^= state_ >> 12, state_ ^= state_ << 25, state_ ^= state_ >> 27;
  const double u = double((state_ * 0x2545F4914F6CDD1Dull) >> 11) * 0x1.0p-53 * total;
  double acc = 0;
  for (size_t i = 0; i < keep; ++i) {
    acc += cand_[i].first;
    if (u < acc) return cand_[i].second;
  }
  return cand_[keep - 1].second;
}

std::vector<int32_t> generate(model::Session& session, std::span<const int32_t> prompt,
                              const GenerateOptions& o, const std::function<bool(int32_t)>& on_token) {
  if (prompt.empty()) throw_error("generation needs a prompt of at least one token");
  const int64_t n_vocab = session.model().config().n_vocab;
  std::vector<float> logits(static_cast<size_t>(n_vocab));
  Sampler sampler(o.sampling);
  std::vector<int32_t> out;
  session.decode(prompt, int64_t(prompt.size()) - 1, logits);
  while (o.n_predict < 0 || int64_t(out.size()) < o.n_predict) {
    for (int32_t b : o.banned)
      if (b >= 0 && b < n_vocab) logits[size_t(b)] = -std::numeric_limits<float>::infinity();
    const int32_t id = sampler.sample(logits);
    out.push_back(id);
    const bool go_on = on_token ? on_token(id) : true;
    if (!go_on || (o.is_eog && o.is_eog(id))) break;
    if (o.n_predict >= 0 && int64_t(out.size()) >= o.n_predict) break;
    if (session.n_past() >= session.options().n_ctx) break;  // context full
    const int32_t next[1] = {id};
    session.decode(next, 0, logits);
  }
  return out;
}

}  // namespace imq::eval
