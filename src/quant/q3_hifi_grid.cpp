// The block grid of Q3_HIFI for error-compensated quantization (quant/grid.h, src/gptq).
//
// The grid model is per element: element i decodes to step[i] * q + offset[i] for a code q
// chosen after the block's parameters are fixed. The outliers are parameters too (which
// weights, and their f16 values), and which weights deserve them depends on the values the
// error feedback has already changed, so fit() chooses them first, with the codec's own
// search (kSaving) on the block's current values. An outlier then becomes an element with
// step 0 and offset = its f16 value: every code decodes to that value, so the solver keeps it
// and pushes its (f16 rounding) error onward like any other. The other 248 weights lie on the
// Q3_K grid of that fit (step d * scale_j, codes -4..3), and store() writes the solver's codes
// into the Q3_K part. Outlier codes are left as the fit wrote them (the decoder ignores them).
#include <cstring>

#include "core/fp16.h"
#include "quant/block_io.h"
#include "quant/grid.h"
#include "quant/kquants/search_imq.h"
#include "quant/q3_hifi.h"

namespace imq::quant::q3_hifi {

namespace {

void fit(const float* x, const float* qw, int /*variant*/, void* block, BlockGrid& g) {
  Block b;
  quantize_block(x, qw, Selection::kSaving, b);
  store_block(block, 0, b);
  BlockQ3K q;
  std::memcpy(&q, b.q3_k, sizeof q);
  KParams p;
  unpack(q, p);
  g.qmin = kQ3.qmin;
  g.qmax = kQ3.qmax;
  g.levels = nullptr;
  for (int i = 0; i < kBlockSize; ++i) {
    g.step[i] = p.d * float(p.sc[i / kQ3.sub]);
    g.offset[i] = 0;
    g.q[i] = p.q[i];
  }
  // Repeated positions cannot occur (the writer stores 8 distinct ones); the later slot
  // would win, as in dequantize_block.
  for (int k = 0; k < kOutliers; ++k) {
    g.step[b.idx[k]] = 0;
    g.offset[b.idx[k]] = f16_to_f32(b.val[k]);
  }
}

void store(const BlockGrid& g, void* block) {
  Block b = load_block<Block>(block, 0);
  BlockQ3K q;
  std::memcpy(&q, b.q3_k, sizeof q);
  KParams p;
  unpack(q, p);
  for (int i = 0; i < kBlockSize; ++i) p.q[i] = g.q[i];
  pack(p, &q);
  std::memcpy(b.q3_k, &q, sizeof q);
  store_block(block, 0, b);
}

constexpr GridOps kOps{1, fit, store};

}  // namespace

const GridOps* grid() { return &kOps; }

}  // namespace imq::quant::q3_hifi
