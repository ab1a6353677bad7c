// Where Q3_HIFI's bytes go (issue 24): per tensor kind and per layer of a real model, the
// importance-weighted error of Q3_K, Q3_HIFI (the fork's magnitude rule, imq's joint search,
// imq's saving search) and Q4_K, the error with k outliers (k = 0..16, the magnitude rule,
// outliers removed before the Q3_K fit), and whether removing the outliers before fitting
// the 3-bit scales helps the rest of the block (pre-fit) or not (post-fit: Q3_K of the whole
// block, the same outliers then stored exactly).
//
//   q3_hifi_layers MODEL.gguf IMATRIX.gguf [blocks per tensor, default 2048]
//
// Error: sum w_i (x_i - y_i)^2 / sum w_i x_i^2 over the sampled blocks of a kind (w = the
// imatrix's mean squared activation of the column, as the quantizer uses it). A plain program
// (its own main): it measures, it does not time.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "imq/error.h"
#include "imq/gguf.h"
#include "imq/quant.h"
#include "imq/quantize.h"
#include "quant/q3_hifi.h"

namespace {

using namespace imq;
namespace q3h = quant::q3_hifi;
constexpr int kN = q3h::kBlockSize;
constexpr int kCounts[] = {0, 1, 2, 4, 8, 16};
constexpr int kNCounts = int(std::size(kCounts));

enum Col { kQ3K, kQ3KImq, kMag, kJoint, kSaving, kQ4K, kPostFit, kNCols };
const char* kColNames[kNCols] = {"Q3_K", "Q3_K imq", "HIFI mag", "HIFI joint", "HIFI saving",
                                 "Q4_K", "mag post-fit"};

struct Sums {
  double energy = 0;
  double err[kNCols] = {};
  double by_count[kNCounts] = {};
  int64_t blocks = 0;
};

double err_of(const float* x, const float* y, const float* w) {
  return q3h::weighted_error(x, y, w, kN);
}

double codec_err(GgmlType t, bool imq, const float* x, const float* w) {
  const auto& c = quant::codec(t);
  std::vector<uint8_t> buf(c.type_size);
  float y[kN];
  (imq && c.quantize_imq ? c.quantize_imq : c.quantize)(x, buf.data(), 1, kN, w);
  c.dequantize(buf.data(), y, kN);
  return err_of(x, y, w);
}

double hifi_err(q3h::Selection sel, const float* x, const float* w) {
  q3h::Block b;
  return q3h::quantize_block(x, w, sel, b).error;
}

// The k positions with the largest |x_i| w_i.
std::vector<int> magnitude_set(const float* x, const float* w, int k) {
  std::vector<int> order(kN);
  for (int i = 0; i < kN; ++i) order[size_t(i)] = i;
  std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int a, int b) {
    const float ma = std::fabs(x[a]) * w[a], mb = std::fabs(x[b]) * w[b];
    return ma > mb || (ma == mb && a < b);
  });
  order.resize(size_t(k));
  return order;
}

// k outliers removed before the Q3_K fit (k need not be 8: this measures, it stores nothing).
double prefit_err(const float* x, const float* w, int k) {
  float xz[kN], wz[kN], y[kN];
  std::copy(x, x + kN, xz);
  std::copy(w, w + kN, wz);
  const auto set = magnitude_set(x, w, k);
  for (int i : set) xz[i] = wz[i] = 0;
  uint8_t q[q3h::kQ3KBytes];
  q3h::q3k::quantize(xz, wz, q);
  q3h::q3k::dequantize(q, y);
  for (int i : set) y[i] = x[i];
  return err_of(x, y, w);
}

// Q3_K of the whole block, then the 8 magnitude outliers overwritten with their values.
double postfit_err(const float* x, const float* w) {
  float y[kN];
  uint8_t q[q3h::kQ3KBytes];
  q3h::q3k::quantize(x, w, q);
  q3h::q3k::dequantize(q, y);
  for (int i : magnitude_set(x, w, q3h::kOutliers)) y[i] = x[i];
  return err_of(x, y, w);
}

void add_block(Sums& s, const float* x, const float* w) {
  for (int i = 0; i < kN; ++i) s.energy += double(w[i]) * x[i] * x[i];
  s.err[kQ3K] += codec_err(GgmlType::Q3_K, false, x, w);
  s.err[kQ3KImq] += codec_err(GgmlType::Q3_K, true, x, w);
  s.err[kQ4K] += codec_err(GgmlType::Q4_K, false, x, w);
  s.err[kMag] += hifi_err(q3h::Selection::kMagnitude, x, w);
  s.err[kJoint] += hifi_err(q3h::Selection::kJoint, x, w);
  s.err[kSaving] += hifi_err(q3h::Selection::kSaving, x, w);
  s.err[kPostFit] += postfit_err(x, w);
  for (int c = 0; c < kNCounts; ++c) s.by_count[c] += prefit_err(x, w, kCounts[c]);
  ++s.blocks;
}

// "blk.3.ffn_down.weight" -> ("ffn_down", 3); kinds keep the _exps suffix of MoE tensors.
std::pair<std::string, int> kind_of(const std::string& name) {
  const size_t a = name.find('.'), b = name.find('.', a + 1), c = name.rfind('.');
  return {name.substr(b + 1, c - b - 1), std::stoi(name.substr(a + 1, b - a - 1))};
}

void print(const std::string& label, const Sums& s) {
  std::printf("| %s | %lld |", label.c_str(), static_cast<long long>(s.blocks));
  for (int k = 0; k < kNCols; ++k) std::printf(" %.5f |", s.err[k] / s.energy);
  for (int c = 0; c < kNCounts; ++c) std::printf(" %.5f |", s.by_count[c] / s.energy);
  std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s MODEL.gguf IMATRIX.gguf [blocks per tensor]\n", argv[0]);
    return 2;
  }
  try {
    const int64_t max_blocks = argc > 3 ? std::stoll(argv[3]) : 2048;
    const auto file = gguf::File::open(argv[1]);
    quantize::Options opt;
    opt.ftype = quantize::parse_ftype("Q3_K_M").ftype;
    opt.imatrix_path = argv[2];
    const auto plan = quantize::make_plan(file, opt);
    std::map<std::string, Sums> by_kind, by_layer;
    Sums all;
    for (const auto& tp : plan.tensors) {
      if (tp.name.rfind("blk.", 0) != 0 || tp.importance_use != quantize::ImportanceUse::kUsed ||
          tp.ne[0] % kN != 0)
        continue;
      const auto& info = file.tensor(tp.name);
      const auto& src = quant::codec(info.type);
      const int64_t ne0 = tp.ne[0], rows = info.n_rows(), per_row = ne0 / kN;
      const int64_t step = std::max<int64_t>(1, rows * per_row / max_blocks);
      const size_t row_bytes = quant::row_size(src, ne0);
      const auto data = file.tensor_data(info);
      std::vector<float> x(static_cast<size_t>(ne0));
      const auto [kind, layer] = kind_of(tp.name);
      for (int64_t r = 0; r < rows; r += step) {
        src.dequantize(data.data() + size_t(r) * row_bytes, x.data(), ne0);
        const int64_t expert = r / tp.ne[1];
        const float* w = tp.importance.data() + (tp.importance.size() > size_t(ne0) ? expert * ne0 : 0);
        for (int64_t b = 0; b < per_row; ++b) {
          add_block(by_kind[kind], x.data() + b * kN, w + b * kN);
          add_block(by_layer[kind + " " + std::to_string(layer)], x.data() + b * kN, w + b * kN);
        }
      }
    }
    std::printf("| kind | blocks |");
    for (auto* n : kColNames) std::printf(" %s |", n);
    for (int c : kCounts) std::printf(" %d out |", c);
    std::printf("\n|---|---:|");
    for (int k = 0; k < kNCols + kNCounts; ++k) std::printf("---:|");
    std::printf("\n");
    for (const auto& [k, s] : by_kind) {
      print(k, s);
      for (int i = 0; i < kNCols; ++i) all.err[i] += s.err[i];
      for (int c = 0; c < kNCounts; ++c) all.by_count[c] += s.by_count[c];
      all.energy += s.energy;
      all.blocks += s.blocks;
    }
    print("all", all);
    std::printf("\nper layer\n");
    for (const auto& [k, s] : by_layer) print(k, s);
    return 0;
  } catch (const imq::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
