#include "kernels/matmul.h"

#include <cblas.h>

#include <algorithm>
#include <cstring>

#include "imq/error.h"
#include "kernels/vec.h"

namespace imq::kernels {
namespace {

// Floats of per-thread scratch: one dequantized tile of up to 256 rows of 2048 columns (2 MiB),
// or fewer rows of longer ones (at least kMinTileRows).
constexpr int64_t kTileFloats = int64_t(1) << 19;
constexpr int64_t kMinTileRows = 16;

// Rows per SGEMM tile: at most what the scratch holds, and small enough that a matrix splits
// into at least kMinTiles tiles for the pool to share (a multiple of kMinTileRows).
constexpr int64_t kMinTiles = 8;
int64_t gemm_tile_rows(int64_t scratch_rows, int64_t ne1) {
  const int64_t share = (ne1 / kMinTiles + kMinTileRows - 1) / kMinTileRows * kMinTileRows;
  return std::max(kMinTileRows, std::min(scratch_rows, share));
}

// Few activation rows: one weight row at a time against every activation row.
void matmul_rows(const WeightView& w, const float* x, int64_t n, float* y, MatmulContext& ctx) {
  const int64_t ne0 = w.ne0, ne1 = w.ne1;
  ctx.pool().parallel_for(size_t(ne1), [&](size_t b, size_t e, int thread) {
    float* tmp = ctx.scratch(thread);
    const auto dot = w.kernels->dot;
    for (int64_t r = int64_t(b); r < int64_t(e); ++r) {
      const uint8_t* row = w.row(r);
      if (dot) {
        for (int64_t t = 0; t < n; ++t) y[t * ne1 + r] = dot(row, x + t * ne0, ne0);
      } else {
        w.codec->dequantize(row, tmp, ne0);
        for (int64_t t = 0; t < n; ++t) y[t * ne1 + r] = dot_f32(tmp, x + t * ne0, ne0);
      }
    }
  }, 8);
}

// Many activation rows: SGEMM against float tiles of W. The tiles are fixed by the shape alone
// (never by the thread count), so every output element comes from the same SGEMM call shape
// whichever thread computes it: OpenBLAS kernels (Haswell's among them) may sum a dot product
// in another order at another N, and the thread count would otherwise change bits.
void matmul_gemm(const WeightView& w, const float* x, int64_t n, float* y, MatmulContext& ctx) {
  const int64_t ne0 = w.ne0, ne1 = w.ne1;
  const bool in_place = w.kernels->float_rows;
  // F32 rows are multiplied in place, but still a tile at a time: OpenBLAS then packs a
  // panel of W that stays in cache (measured ~10 % faster than one call per thread).
  const int64_t tile = gemm_tile_rows(ctx.tile_rows(ne0), ne1);
  const int64_t n_tiles = (ne1 + tile - 1) / tile;
  ctx.pool().parallel_for(size_t(n_tiles), [&](size_t b, size_t e, int thread) {
    for (int64_t ti = int64_t(b); ti < int64_t(e); ++ti) {
      const int64_t r0 = ti * tile, rows = std::min<int64_t>(tile, ne1 - r0);
      const float* wt;
      if (in_place) {
        wt = reinterpret_cast<const float*>(w.row(r0));
      } else {
        float* tmp = ctx.scratch(thread);
        dequantize_rows(w, r0, r0 + rows, tmp);
        wt = tmp;
      }
      // y[:, r0:r0+rows] = x · wtᵀ
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(n), int(rows), int(ne0), 1.0f, x,
                  int(ne0), wt, int(ne0), 0.0f, y + r0, int(ne1));
    }
  });
}

}  // namespace

void dequantize_rows(const WeightView& w, int64_t r0, int64_t r1, float* dst) {
  const int64_t n = (r1 - r0) * w.ne0;
  const uint8_t* src = w.row(r0);
  if (w.kernels && w.kernels->to_float)
    w.kernels->to_float(src, dst, n);
  else
    w.codec->dequantize(src, dst, n);
}

WeightView make_weight_view(std::string_view name, const quant::Codec& codec, int64_t ne0,
                            int64_t ne1, int64_t ne2, const uint8_t* data) {
  WeightView v;
  v.name = name;
  v.type = codec.type;
  v.ne0 = ne0, v.ne1 = ne1, v.ne2 = ne2;
  v.data = data;
  v.row_bytes = quant::row_size(codec, ne0);
  v.codec = &codec;
  v.kernels = &type_kernels(codec);
  return v;
}

MatmulContext::MatmulContext(ThreadPool& pool, int64_t max_ne0)
    : pool_(pool), max_ne0_(max_ne0), blas_threads_before_(openblas_get_num_threads()) {
  openblas_set_num_threads(1);
  const int64_t floats = std::max(kTileFloats, kMinTileRows * max_ne0);
  scratch_.resize(size_t(pool.size()));
  for (auto& s : scratch_) s.assign(size_t(floats), 0.0f);
}

MatmulContext::~MatmulContext() { openblas_set_num_threads(blas_threads_before_); }

int64_t MatmulContext::tile_rows(int64_t ne0) const {
  const int64_t floats = int64_t(scratch_[0].size());
  int64_t rows = std::min<int64_t>(256, floats / std::max<int64_t>(1, ne0));
  return std::max(kMinTileRows, rows / kMinTileRows * kMinTileRows);
}

void matmul(const WeightView& w, const float* x, int64_t n, float* y, MatmulContext& ctx) {
  if (n <= 0) return;
  if (!w.kernels) throw_error("matmul: the view of {} was not made by make_weight_view", w.name);
  if (w.ne2 != 1) throw_error("matmul: {} is 3-D; multiply one expert at a time", w.name);
  if (w.ne0 > ctx.max_ne0())
    throw_error("matmul: {} has rows of {} elements, scratch holds {}", w.name, w.ne0, ctx.max_ne0());
  if (n >= kGemmMinRows)
    matmul_gemm(w, x, n, y, ctx);
  else
    matmul_rows(w, x, n, y, ctx);
}

void matmul_ref(const WeightView& w, const float* x, int64_t n, float* y) {
  std::vector<float> row(size_t(w.ne0));
  for (int64_t r = 0; r < w.ne1; ++r) {
    dequantize_rows(w, r, r + 1, row.data());
    for (int64_t t = 0; t < n; ++t) {
      double s = 0;
      for (int64_t j = 0; j < w.ne0; ++j) s += double(row[size_t(j)]) * double(x[t * w.ne0 + j]);
      y[t * w.ne1 + r] = float(s);
    }
  }
}

}  // namespace imq::kernels
