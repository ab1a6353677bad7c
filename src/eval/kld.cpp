// KL divergence of a model against a base logits file, and llama-perplexity's report.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "imq/error.h"
#include "imq/eval.h"

namespace imq::eval {
namespace {

// Compares one position's logits with its base record; updates the totals.
void compare(const float* logits, int64_t n_vocab, const uint16_t* record, int32_t tok,
             KldTotals& t, float& kld_out, float& p_diff_out) {
  float mx = logits[0];
  int64_t imax = 0;
  for (int64_t i = 1; i < n_vocab; ++i)
    if (logits[i] > mx) {
      mx = logits[i];
      imax = i;
    }
  double sum_exp = 0;
  for (int64_t i = 0; i < n_vocab; ++i) sum_exp += std::exp(logits[i] - mx);
  const float log_sum_exp = mx + float(std::log(sum_exp));
  float scale, min_log_prob;
  std::memcpy(&scale, record, 4);
  std::memcpy(&min_log_prob, record + 2, 4);
  const uint16_t* q = record + 4;

  const float nll = log_sum_exp - logits[tok];
  const float nll_base = -(scale * float(q[tok]) + min_log_prob);
  t.sum_nll += nll;
  t.sum_nll2 += double(nll) * nll;
  t.sum_nll_base += nll_base;
  t.sum_nll_base2 += double(nll_base) * nll_base;
  t.sum_nll_nll_base += double(nll) * nll_base;

  double kld = 0;
  int64_t imax_base = 0;
  float base_max = 0;
  for (int64_t i = 0; i < n_vocab; ++i) {
    const float lp = scale * float(q[i]) + min_log_prob;
    if (i == 0 || lp > base_max) {
      base_max = lp;
      imax_base = i;
    }
    if (lp > -16.0f) kld += double(std::exp(lp)) * double(lp - logits[i] + log_sum_exp);
  }
  t.sum_kld += kld;
  t.sum_kld2 += kld * kld;
  ++t.count;
  if (imax == imax_base) ++t.n_same_top;

  const float p_diff = std::exp(-nll) - std::exp(-nll_base);
  const double d2 = double(p_diff) * p_diff;
  t.sum_p_diff += p_diff;
  t.sum_p_diff2 += d2;
  t.sum_p_diff4 += d2 * d2;
  kld_out = float(kld);
  p_diff_out = p_diff;
}

struct MeanUnc {
  double mean, unc;
};
MeanUnc mean_and_uncertainty(double sum, double sum2, int64_t count) {
  if (count < 1) return {0, 0};
  const double f = sum / double(count);
  const double df = sum2 / double(count) - f * f;
  return {f, df > 0 && count > 10 ? std::sqrt(df / double(count - 1)) : 0.0};
}
double covariance(double sa, double sb, double sab, int64_t count) {
  if (count < 10) return 0;
  const double c = double(count);
  return (sab / c - (sa / c) * (sb / c)) / (c - 1);
}

float percentile(const std::vector<float>& v, float fraction) {
  if (fraction <= 0) return v.front();
  if (fraction >= 1) return v.back();
  float p = fraction * float(v.size() - 1);
  const size_t ip = size_t(p);
  p -= float(ip);
  return (1 - p) * v[ip] + p * v[std::min(ip + 1, v.size() - 1)];
}
float median(const std::vector<float>& v) {
  const size_t n = v.size();
  return n % 2 == 0 ? 0.5f * (v[n / 2] + v[n / 2 - 1]) : v[n / 2];
}

}  // namespace

KldResult kl_divergence(model::Session& session, const LogitsFile& base, const ChunkOptions& options,
                        const KldCallback& on_chunk) {
  const int64_t n_vocab = session.model().config().n_vocab;
  if (base.n_vocab() != n_vocab)
    throw_error("the base logits file has a vocabulary of {}, the model {}", base.n_vocab(), n_vocab);
  if (options.n_ctx > 0 && options.n_ctx < base.n_ctx())
    throw_error("the base logits were computed with a context of {}, the current one is {}: "
                "increase it with -c", base.n_ctx(), options.n_ctx);
  ChunkOptions o = options;
  o.n_ctx = base.n_ctx();
  o.first = base.n_ctx() / 2;
  o.all_logits = false;
  o.n_chunks = options.n_chunks < 0 ? base.n_chunk() : std::min<int64_t>(options.n_chunks, base.n_chunk());
  const auto tokens = base.tokens().first(size_t(o.n_chunks * o.n_ctx));

  KldResult r;
  const int64_t per_chunk = o.n_ctx - 1 - o.first;
  const int64_t nv = 2 * ((n_vocab + 1) / 2) + 4;
  r.kld.reserve(size_t(per_chunk * o.n_chunks));
  r.p_diff.reserve(size_t(per_chunk * o.n_chunks));
  perplexity(session, tokens, o, [&](const ChunkView& c) {
    const uint16_t* rec = base.chunk(int32_t(c.index));
    for (int64_t j = 0; j < per_chunk; ++j) {
      const int64_t p = c.first + j;
      float kld, p_diff;
      compare(c.logits + (p - c.logits_from) * n_vocab, n_vocab, rec + j * nv,
              c.tokens[size_t(p + 1)], r.totals, kld, p_diff);
      r.kld.push_back(kld);
      r.p_diff.push_back(p_diff);
    }
    if (on_chunk) on_chunk(c.index, r);
  });
  return r;
}

std::string kld_table_header() {
  return "\nchunk             PPL               ln(PPL(Q)/PPL(base))          KL Divergence"
         "              \u0394p RMS            Same top p\n";
}

std::string kld_chunk_line(int64_t chunk_index, const KldTotals& t) {
  const auto lp = mean_and_uncertainty(t.sum_nll, t.sum_nll2, t.count);
  const double ppl = std::exp(lp.mean);
  const auto lb = mean_and_uncertainty(t.sum_nll_base, t.sum_nll_base2, t.count);
  const double cov = covariance(t.sum_nll, t.sum_nll_base, t.sum_nll_nll_base, t.count);
  const double ratio_unc = std::sqrt(lp.unc * lp.unc + lb.unc * lb.unc - 2.0 * cov);
  const auto kl = mean_and_uncertainty(t.sum_kld, t.sum_kld2, t.count);
  const auto mse = mean_and_uncertainty(t.sum_p_diff2, t.sum_p_diff4, t.count);
  const double rms = std::sqrt(mse.mean);
  const double rms_unc = 0.5 / rms * mse.unc;
  const double top = double(t.n_same_top) / double(t.count);
  const double top_unc = std::sqrt(top * (1 - top) / double(t.count - 1));
  return fmt::format(
      "{:4d}    {:9.4f} \u00b1 {:9.4f}    {:10.5f} \u00b1 {:10.5f}    {:10.5f} \u00b1 {:10.5f}    "
      "{:6.3f} \u00b1 {:6.3f} %    {:6.3f} \u00b1 {:6.3f} %\n",
      chunk_index + 1, ppl, ppl * lp.unc, lp.mean - lb.mean, ratio_unc, kl.mean, kl.unc,
      100.0 * rms, 100.0 * rms_unc, 100.0 * top, 100.0 * top_unc);
}

std::string kld_report(const KldResult& r) {
  const KldTotals& t = r.totals;
  if (t.count < 100) return {};
  std::vector<float> kld = r.kld, pd = r.p_diff;
  std::sort(kld.begin(), kld.end());
  std::sort(pd.begin(), pd.end());
  std::string s = "\n====== Perplexity statistics ======\n";
  const auto lp = mean_and_uncertainty(t.sum_nll, t.sum_nll2, t.count);
  const double ppl = std::exp(lp.mean), ppl_unc = ppl * lp.unc;
  s += fmt::format("Mean PPL(Q)                   : {:10.6f} \u00b1 {:10.6f}\n", ppl, ppl_unc);
  const auto lb = mean_and_uncertainty(t.sum_nll_base, t.sum_nll_base2, t.count);
  const double cov = covariance(t.sum_nll, t.sum_nll_base, t.sum_nll_nll_base, t.count);
  const double ppl_b = std::exp(lb.mean), ppl_b_unc = ppl_b * lb.unc;
  s += fmt::format("Mean PPL(base)                : {:10.6f} \u00b1 {:10.6f}\n", ppl_b, ppl_b_unc);
  s += fmt::format("Cor(ln(PPL(Q)), ln(PPL(base))): {:6.2f}%\n", 100.0 * cov / (lp.unc * lb.unc));
  const double lr = lp.mean - lb.mean;
  const double lr_unc = std::sqrt(lp.unc * lp.unc + lb.unc * lb.unc - 2.0 * cov);
  s += fmt::format("Mean ln(PPL(Q)/PPL(base))     : {:10.6f} \u00b1 {:10.6f}\n", lr, lr_unc);
  const double ratio = std::exp(lr);
  s += fmt::format("Mean PPL(Q)/PPL(base)         : {:10.6f} \u00b1 {:10.6f}\n", ratio, ratio * lr_unc);
  const double pcov = ppl * ppl_b * cov;
  const double diff_unc = std::sqrt(ppl_unc * ppl_unc + ppl_b_unc * ppl_b_unc - 2.0 * pcov);
  s += fmt::format("Mean PPL(Q)-PPL(base)         : {:10.6f} \u00b1 {:10.6f}\n", ppl - ppl_b, diff_unc);

  s += "\n====== KL divergence statistics ======\n";
  const auto kl = mean_and_uncertainty(t.sum_kld, t.sum_kld2, t.count);
  s += fmt::format("Mean    KLD: {:10.6f} \u00b1 {:10.6f}\n", kl.mean, kl.unc);
  s += fmt::format("Maximum KLD: {:10.6f}\n", kld.back());
  const std::pair<const char*, float> kq[] = {{"99.9%", 0.999f}, {"99.0%", 0.990f}, {"95.0%", 0.950f},
                                              {"90.0%", 0.900f}};
  for (const auto& [name, f] : kq) s += fmt::format("{}   KLD: {:10.6f}\n", name, percentile(kld, f));
  s += fmt::format("Median  KLD: {:10.6f}\n", median(kld));
  const std::pair<const char*, float> kq2[] = {{"10.0%", 0.100f}, {" 5.0%", 0.050f}, {" 1.0%", 0.010f},
                                               {" 0.1%", 0.001f}};
  for (const auto& [name, f] : kq2) s += fmt::format("{}   KLD: {:10.6f}\n", name, percentile(kld, f));
  s += fmt::format("Minimum KLD: {:10.6f}\n", kld.front());

  s += "\n====== Token probability statistics ======\n";
  const auto pm = mean_and_uncertainty(t.sum_p_diff, t.sum_p_diff2, t.count);
  s += fmt::format("Mean    \u0394p: {:6.3f} \u00b1 {:5.3f} %\n", 100.0 * pm.mean, 100.0 * pm.unc);
  s += fmt::format("Maximum \u0394p: {:6.3f}%\n", 100.0 * pd.back());
  const std::pair<const char*, float> pq[] = {{"99.9%", 0.999f}, {"99.0%", 0.990f}, {"95.0%", 0.950f},
                                              {"90.0%", 0.900f}, {"75.0%", 0.750f}};
  for (const auto& [name, f] : pq) s += fmt::format("{}   \u0394p: {:6.3f}%\n", name, 100.0 * percentile(pd, f));
  s += fmt::format("Median  \u0394p: {:6.3f}%\n", 100.0 * median(pd));
  const std::pair<const char*, float> pq2[] = {{"25.0%", 0.250f}, {"10.0%", 0.100f}, {" 5.0%", 0.050f},
                                               {" 1.0%", 0.010f}, {" 0.1%", 0.001f}};
  for (const auto& [name, f] : pq2) s += fmt::format("{}   \u0394p: {:6.3f}%\n", name, 100.0 * percentile(pd, f));
  s += fmt::format("Minimum \u0394p: {:6.3f}%\n", 100.0 * pd.front());
  auto rms = mean_and_uncertainty(t.sum_p_diff2, t.sum_p_diff4, t.count);
  const double rms_v = std::sqrt(rms.mean), rms_unc = rms.unc / (2.0 * rms_v);
  s += fmt::format("RMS \u0394p    : {:6.3f} \u00b1 {:5.3f} %\n", 100.0 * rms_v, 100.0 * rms_unc);
  const double top = double(t.n_same_top) / double(t.count);
  s += fmt::format("Same top p: {:6.3f} \u00b1 {:5.3f} %\n", 100.0 * top,
                   100.0 * std::sqrt(top * (1.0 - top) / double(t.count - 1)));
  return s;
}

}  // namespace imq::eval
