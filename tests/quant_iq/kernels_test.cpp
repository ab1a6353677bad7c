// The i-quants' rows of the kernel table (kernels/iq_hwy.cpp) against their codecs, on
// every SIMD target this CPU runs: to_float gives the bits of the codec's dequantize, and the
// fused dot is within float summation error of the dequantized row's dot taken in double.
// Blocks come two ways: random bytes (every grid index, sign and scale pattern; the f16 scale
// kept finite, since NaN payloads are not part of the contract) and real quantized tensors:
// a shared model's trained weights quantized by the codecs (whose bytes are llama-quantize's:
// tests/quantize; ../shared holds no grid i-quant GGUF), and the IQ4 reference files.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/fp16.h"
#include "imq/ggml_types.h"
#include "imq/gguf.h"
#include "imq/quant.h"
#include "kernels/type_kernels.h"
#include "kernels/vec.h"
#include "test_util.h"

namespace imq {
namespace {

const GgmlType kTypes[] = {GgmlType::IQ1_S,   GgmlType::IQ1_M, GgmlType::IQ2_XXS, GgmlType::IQ2_XS,
                           GgmlType::IQ2_S,   GgmlType::IQ3_XXS, GgmlType::IQ3_S, GgmlType::IQ4_NL,
                           GgmlType::IQ4_XS};

// A finite f16 (exponent field below 31), any sign, normal or subnormal.
uint16_t finite_f16(std::mt19937& rng) {
  uint16_t h = uint16_t(rng());
  if (((h >> 10) & 0x1f) == 0x1f) h = uint16_t(h & ~0x4000);
  return h;
}

// `blocks` blocks of random bytes with a finite scale. IQ1_M keeps its f16 in the top nibbles
// of the four scale words at bytes 48..55; every other type at bytes 0..1.
std::vector<uint8_t> random_blocks(const quant::Codec& c, int64_t blocks, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> data(size_t(blocks) * c.type_size);
  for (auto& b : data) b = uint8_t(rng());
  for (int64_t i = 0; i < blocks; ++i) {
    uint8_t* blk = data.data() + size_t(i) * c.type_size;
    const uint16_t d = finite_f16(rng);
    if (c.type == GgmlType::IQ1_M) {
      for (int k = 0; k < 4; ++k)
        blk[48 + 2 * k + 1] = uint8_t((blk[48 + 2 * k + 1] & 0x0f) | (((d >> (4 * k)) & 0xf) << 4));
    } else {
      std::memcpy(blk, &d, 2);
    }
  }
  return data;
}

std::vector<float> random_x(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0, 1);
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) v = normal(rng);
  return x;
}

// Rows of ne0 values in `data`: to_float equals dequantize bit for bit, and each row's dot is
// within ne0 * 2^-24 * sum |w x| of the double dot of the dequantized row (the worst case of
// summing ne0 float products in any order), on every SIMD target.
void expect_rows_match_codec(const quant::Codec& c, const std::vector<uint8_t>& data, int64_t ne0) {
  const kernels::TypeKernels& k = kernels::type_kernels(c);
  ASSERT_NE(k.to_float, nullptr) << c.name;
  ASSERT_NE(k.dot, nullptr) << c.name;
  const int64_t n = int64_t(data.size() / c.type_size) * c.block_size, rows = n / ne0;
  const size_t row_bytes = size_t(ne0 / c.block_size) * c.type_size;
  std::vector<float> want(static_cast<size_t>(n));
  c.dequantize(data.data(), want.data(), n);
  const auto x = random_x(ne0, 5);
  for (int64_t target : kernels::simd_targets()) {
    kernels::use_simd_target(target);
    SCOPED_TRACE(std::string(c.name) + " on " + kernels::simd_target_name());
    std::vector<float> got(static_cast<size_t>(n), std::nanf(""));
    k.to_float(data.data(), got.data(), n);
    int64_t first_diff = -1;
    for (int64_t i = 0; i < n && first_diff < 0; ++i)
      if (std::memcmp(&got[size_t(i)], &want[size_t(i)], 4) != 0) first_diff = i;
    EXPECT_EQ(first_diff, -1) << "value " << first_diff << ": " << got[size_t(std::max<int64_t>(0, first_diff))]
                              << " vs " << want[size_t(std::max<int64_t>(0, first_diff))];
    for (int64_t r = 0; r < rows; ++r) {
      double ref = 0, mag = 0;
      for (int64_t j = 0; j < ne0; ++j) {
        const double p = double(want[size_t(r * ne0 + j)]) * double(x[size_t(j)]);
        ref += p, mag += std::fabs(p);
      }
      const float dot = k.dot(data.data() + size_t(r) * row_bytes, x.data(), ne0);
      EXPECT_LE(std::fabs(double(dot) - ref), double(ne0) * 0x1p-24 * mag) << "row " << r;
    }
  }
  kernels::use_simd_target(0);
}

TEST(IqKernels, EveryIQuantHasSimdRows) {
  for (GgmlType t : kTypes) {
    const kernels::TypeKernels& k = kernels::type_kernels(quant::codec(t));
    EXPECT_NE(k.to_float, nullptr) << ggml_type_display_name(t);
    EXPECT_NE(k.dot, nullptr) << ggml_type_display_name(t);
    EXPECT_FALSE(k.float_rows) << ggml_type_display_name(t);
  }
}

TEST(IqKernels, RandomBlocksMatchTheCodec) {
  for (GgmlType t : kTypes) {
    const quant::Codec& c = quant::codec(t);
    for (int64_t ne0 : {256, 1024}) expect_rows_match_codec(c, random_blocks(c, 48, 17 + uint32_t(t)), ne0);
  }
}

// Trained weights: the attention and FFN matrices of the shared dense model's first two blocks,
// 32 rows each, quantized by each codec (without importance) and decoded by the kernels.
TEST(IqKernels, QuantizedModelBlocksMatchTheCodec) {
  IMQ_NEED_SHARED(path, "models/dense-spm4k-f32.gguf");
  const gguf::File model = gguf::File::open(path);
  int matrices = 0;
  for (const gguf::TensorInfo& t : model.tensors()) {
    if (t.type != GgmlType::F32 || t.n_dims != 2 || t.ne[0] % 256 != 0) continue;
    if (t.name.rfind("blk.0.", 0) != 0 && t.name.rfind("blk.1.", 0) != 0) continue;
    SCOPED_TRACE(t.name);
    const int64_t ne0 = t.ne[0], rows = std::min<int64_t>(32, t.ne[1]);
    const auto bytes = model.tensor_data(t);
    std::vector<float> w(static_cast<size_t>(rows * ne0));
    std::memcpy(w.data(), bytes.data(), w.size() * sizeof(float));
    for (GgmlType type : kTypes) {
      const quant::Codec& c = quant::codec(type);
      std::vector<uint8_t> q(size_t(rows * ne0 / c.block_size) * c.type_size);
      c.quantize(w.data(), q.data(), rows, ne0, nullptr);
      expect_rows_match_codec(c, q, ne0);
    }
    ++matrices;
  }
  EXPECT_GE(matrices, 8);
}

// llama-quantize's own IQ4_NL and IQ4_XS files of the codec256 model, every quantized tensor.
TEST(IqKernels, LlamaQuantizeIq4FilesMatchTheCodec) {
  int tensors = 0;
  for (const char* name : {"q-IQ4_NL-imat.gguf", "q-IQ4_XS-imat.gguf"}) {
    IMQ_NEED_SHARED(path, std::string("reference/codec256/") + name);
    const gguf::File model = gguf::File::open(path);
    for (const gguf::TensorInfo& t : model.tensors()) {
      if (t.type != GgmlType::IQ4_NL && t.type != GgmlType::IQ4_XS) continue;
      SCOPED_TRACE(t.name);
      const auto bytes = model.tensor_data(t);
      expect_rows_match_codec(quant::codec(t.type), std::vector<uint8_t>(bytes.begin(), bytes.end()), t.ne[0]);
      ++tensors;
    }
  }
  EXPECT_GE(tensors, 2);
}

}  // namespace
}  // namespace imq
