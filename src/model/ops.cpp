#include "model/ops.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

#include "kernels/vec.h"

namespace imq::model {

void rmsnorm(const float* x, const float* w, int64_t n, int64_t d, float eps, float* out) {
  for (int64_t t = 0; t < n; ++t) {
    const float* xr = x + t * d;
    float* o = out + t * d;
    double sum = 0;
    for (int64_t i = 0; i < d; ++i) sum += double(xr[i]) * double(xr[i]);
    const float mean = float(sum / double(d));
    const float scale = 1.0f / std::sqrt(mean + eps);
    for (int64_t i = 0; i < d; ++i) o[i] = (xr[i] * scale) * w[i];
  }
}

void swiglu(const float* gate, const float* up, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void geglu(const float* gate, const float* up, int64_t n, float* out) {
  constexpr float kSqrt2OverPi = 0.79788456080286535587989211986876f, kCoefA = 0.044715f;
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = 0.5f * g * (1.0f + std::tanh(kSqrt2OverPi * g * (1.0f + kCoefA * g * g))) * up[i];
  }
}

void softmax(float* x, int64_t n) {
  const float mx = kernels::max_f32(x, n);
  const double sum = kernels::exp_sub_sum(x, n, mx);
  kernels::scale_f32(x, n, float(1.0 / sum));
}

// --- RoPE --------------------------------------------------------------------------------

namespace {

// YaRN: dimension index at which a rotation completes `n_rot` turns over the original context.
float yarn_corr_dim(int64_t n_dims, int64_t n_ctx_orig, float n_turns, float base) {
  return float(n_dims) * std::log(float(n_ctx_orig) / (n_turns * 2 * std::numbers::pi_v<float>)) /
         (2 * std::log(base));
}

float yarn_ramp(float low, float high, int64_t i0) {
  const float y = (float(i0) / 2 - low) / std::max(0.001f, high - low);
  return 1 - std::min(1.0f, std::max(0.0f, y));
}

}  // namespace

RopeTable::RopeTable(const Config& c, float freq_base, const float* freq_factors,
                     int64_t max_positions)
    : c_(c), freq_factors_(freq_factors) {
  theta_scale_ = std::pow(freq_base, -2.0f / float(c.n_rot));
  if (c.rope_yarn) {
    ext_factor_ = 1.0f;
    const int64_t orig = c.rope_yarn_orig_ctx > 0 ? c.rope_yarn_orig_ctx : c.n_ctx_train;
    const float start = std::floor(yarn_corr_dim(c.n_rot, orig, 32.0f, freq_base));
    const float end = std::ceil(yarn_corr_dim(c.n_rot, orig, 1.0f, freq_base));
    corr_dims_[0] = std::max(0.0f, start);
    corr_dims_[1] = std::min(float(c.n_rot - 1), end);
  }
  const size_t n = size_t(max_positions * (c.n_rot / 2));
  cos_.resize(n);
  sin_.resize(n);
}

void RopeTable::compute(int64_t p0, int64_t n) {
  const int64_t half = c_.n_rot / 2;
  const float fs = c_.rope_freq_scale;
  for (int64_t t = 0; t < n; ++t) {
    float theta_extrap = float(p0 + t);
    for (int64_t i = 0; i < half; ++i) {
      const float ff = freq_factors_ ? freq_factors_[i] : 1.0f;
      const float te = theta_extrap / ff;
      const float theta_interp = fs * te;
      float theta = theta_interp, mscale = mscale_;
      if (ext_factor_ != 0.0f) {
        const float mix = yarn_ramp(corr_dims_[0], corr_dims_[1], 2 * i) * ext_factor_;
        theta = theta_interp * (1 - mix) + te * mix;
        mscale *= 1.0f + 0.1f * std::log(1.0f / fs);
      }
      cos_[size_t(t * half + i)] = std::cos(theta) * mscale;
      sin_[size_t(t * half + i)] = std::sin(theta) * mscale;
      theta_extrap *= theta_scale_;
    }
  }
}

void RopeTable::apply(float* x, int64_t n, int64_t n_heads, int64_t stride, bool fused) const {
  const int64_t half = c_.n_rot / 2, hd = c_.head_dim;
  const bool neox = c_.rope_type == RopeType::Neox;
  for (int64_t t = 0; t < n; ++t) {
    const float* cs = cos_.data() + t * half;
    const float* sn = sin_.data() + t * half;
    for (int64_t h = 0; h < n_heads; ++h) {
      float* v = x + t * stride + h * hd;
      for (int64_t i = 0; i < half; ++i) {
        const int64_t a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
        const float x0 = v[a], x1 = v[b];
        if (fused) {
          v[a] = std::fma(x0, cs[i], -(x1 * sn[i]));
          v[b] = std::fma(x0, sn[i], x1 * cs[i]);
        } else {
          v[a] = x0 * cs[i] - x1 * sn[i];
          v[b] = x0 * sn[i] + x1 * cs[i];
        }
      }
    }
  }
}

// --- attention ---------------------------------------------------------------------------

namespace {
constexpr int64_t kQueryBlock = 64;  // query rows per task
}

int64_t attention_scratch_floats(int64_t n_ctx) { return kQueryBlock * n_ctx; }

void attention(const Config& c, const float* q, const float* k, const float* v, int64_t p0,
               int64_t n, int64_t window, float* out, ThreadPool& pool,
               std::vector<std::vector<float>>& scratch) {
  const int64_t hd = c.head_dim, n_head = c.n_head, group = c.n_head / c.n_head_kv;
  const int64_t ldq = n_head * hd, ldkv = c.n_embd_kv();
  const int64_t n_blocks = (n + kQueryBlock - 1) / kQueryBlock;
  const float scale = c.kq_scale;
  pool.parallel_for(size_t(n_head * n_blocks), [&](size_t b, size_t e, int thread) {
    float* s = scratch[size_t(thread)].data();
    for (size_t task = b; task < e; ++task) {
      const int64_t h = int64_t(task) / n_blocks, blk = int64_t(task) % n_blocks;
      const int64_t g = h / group;
      const int64_t i0 = blk * kQueryBlock, m = std::min(kQueryBlock, n - i0);
      const int64_t n_keys = p0 + i0 + m;  // the block's last query sees keys 0 .. p0+i0+m-1
      // s[m, n_keys] = scale · q_h · k_gᵀ
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(m), int(n_keys), int(hd), scale,
                  q + i0 * ldq + h * hd, int(ldq), k + g * hd, int(ldkv), 0.0f, s, int(n_keys));
      for (int64_t i = 0; i < m; ++i) {
        float* row = s + i * n_keys;
        const int64_t visible = p0 + i0 + i + 1;
        const int64_t first = window > 0 ? std::max<int64_t>(0, visible - window) : 0;
        std::fill(row, row + first, 0.0f);
        softmax(row + first, visible - first);
        std::fill(row + visible, row + n_keys, 0.0f);
      }
      // out_h[m, hd] = s · v_g
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(m), int(hd), int(n_keys), 1.0f, s,
                  int(n_keys), v + g * hd, int(ldkv), 0.0f, out + i0 * ldq + h * hd, int(ldq));
    }
  });
}

}  // namespace imq::model
