// Q3_HIFI internals shared by the codec (q3_hifi.cpp), the outlier search (q3_hifi_search.cpp),
// the tests and the benchmarks. The codec itself is registered through families.h; the block
// layout and its rationale are in docs/FORMATS.md.
#pragma once
#include <cstddef>
#include <cstdint>

namespace imq::quant {
struct GridOps;
}

namespace imq::quant::q3_hifi {

inline constexpr int kBlockSize = 256;  // weights per block, as Q3_K
inline constexpr int kOutliers = 8;     // weights per block stored exactly as f16
inline constexpr size_t kQ3KBytes = 110;

// One block: a Q3_K block of the 256 weights with the outliers zeroed, then the outliers.
struct Block {
  uint8_t q3_k[kQ3KBytes];  // Q3_K block, byte for byte (its value at an outlier is ignored)
  uint8_t idx[kOutliers];   // outlier positions in the block, ascending and distinct
  uint16_t val[kOutliers];  // outlier values, IEEE binary16
};
static_assert(sizeof(Block) == 134, "Q3_HIFI block is 134 bytes");

// How the outliers of a block are chosen.
enum class Selection : uint8_t {
  kMagnitude,  // the fork's rule: the 8 largest |x_i| * w_i (w = importance, or 1)
  kJoint,      // imq's first search: start from kMagnitude, swap while the block's error drops
  kSaving,     // imq's default: kJoint, then the 8 weights whose removal saves the most error
               // once the sub-block scales are re-fitted (greedy, one swap pass;
               // q3_hifi_saving.cpp), kept when a Q3_K fit confirms it
};


// What quantize_block did (for tests and the benchmark).
struct BlockResult {
  double error = 0;  // sum over the block of w_i (x_i - y_i)^2, w = importance or 1
  int fits = 0;      // Q3_K quantizations of the block that the search ran
};

// Quantizes 256 weights x into `out`. importance: 256 weights (the imatrix slice of these
// columns) or null. Thread-safe; allocates nothing.
BlockResult quantize_block(const float* x, const float* importance, Selection sel, Block& out);

// Quantizes nrows rows (n_per_row a multiple of 256) with the given outlier choice; the
// registered codec uses kSaving. Returns the bytes written.
size_t quantize_rows(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                     const float* importance, Selection sel);

// The outliers that kSaving proposes for a block whose Q3_K part has super-block scale d:
// greedily the weight whose removal lowers the block's weighted error the most, each
// sub-block's scale re-chosen among Q3_K's 64 codes at that d, then one swap pass.
void saving_choice(const float* x, const float* importance, float d, uint8_t* out);

// The block grid for error-compensated quantization (quant/grid.h): the outliers are chosen
// (kSaving) from the block's current values and kept as they are (a grid step of 0); the
// other 248 weights lie on the Q3_K grid of that fit.
const GridOps* grid();

// The 256 weights of one block.
void dequantize_block(const Block& b, float* y);

// Sum of w_i (x_i - y_i)^2 over n values, in double; w = importance, or 1 when null.
double weighted_error(const float* x, const float* y, const float* importance, int64_t n);

// The reference dot product of one row of n Q3_HIFI weights (n a multiple of 256) with F32
// activations: the Q3_K part over the non-outlier positions plus sum of val[k] * act[idx[k]].
// Accumulates in double; equals dot(dequantize(row), act) up to that summation order.
float dot(const void* row, const float* act, int64_t n);

// The Q3_K codec (kquants/) that carries the non-outlier weights, one block at a time.
namespace q3k {
// importance: 256 weights (0 where the Q3_K fit may ignore a position) or null (llama.cpp's
// search without an imatrix).
void quantize(const float* x, const float* importance, uint8_t* dst);
void dequantize(const uint8_t* src, float* y);
// ds[j] = d * (scale code of sub-block j - 32): element e decodes to ds[e / 16] * q, q in -4..3.
void subblock_scales(const uint8_t* src, float ds[16]);
// d, the block's f16 super-block scale.
float super_scale(const uint8_t* src);
}  // namespace q3k

}  // namespace imq::quant::q3_hifi
