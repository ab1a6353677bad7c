// Bit placement of every K-quant field: hand-built blocks with known values, random bytes
// decoded by the codec and by the spec decoder, and the exported per-block pieces.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/fp16.h"
#include "kquant_test_util.h"
#include "quant/kquants/kquants.h"

namespace imq {
namespace {

using quant::BlockQ2K;
using quant::BlockQ3K;
using quant::BlockQ4K;
using quant::BlockQ5K;
using quant::BlockQ6K;
using quant::BlockQ8K;

template <typename Block>
std::vector<float> decode(GgmlType type, const Block& b) {
  std::vector<float> y(256);
  quant::codec(type).dequantize(&b, y.data(), 256);
  return y;
}

TEST(KQuantBlocks, Q2KFields) {
  BlockQ2K b{};
  b.d = f32_to_f16(0.5f);
  b.dmin = f32_to_f16(0.25f);
  b.scales[2] = 0x3a;     // sub-block 2 (elements 32..47): scale 10, min 3
  b.qs[0] = 0b11'10'01'00;  // half 0, l = 0: elements 0, 32, 64, 96 get codes 0, 1, 2, 3
  b.qs[32 + 5] = 0b10'00'00'00;  // half 1, l = 5, bit pair 3: element 128 + 96 + 5 = 229, code 2
  b.scales[229 / 16] = 0x07;
  const auto y = decode(GgmlType::Q2_K, b);
  EXPECT_EQ(y[32], 0.5f * 10 * 1 - 0.25f * 3);
  EXPECT_EQ(y[33], -0.25f * 3);  // code 0, min still applies
  EXPECT_EQ(y[229], 0.5f * 7 * 2);
  EXPECT_EQ(y[0], 0.0f);   // scale 0
  EXPECT_EQ(y[64], 0.0f);  // sub-block 4: scale 0
  int nonzero = 0;
  for (float v : y) nonzero += v != 0;
  EXPECT_EQ(nonzero, 16 + 1);  // all of sub-block 2 (its min) plus element 229
}

TEST(KQuantBlocks, Q3KFields) {
  BlockQ3K b{};
  b.d = f32_to_f16(2.0f);
  // Scale code of sub-block 13: 45 = 0b10'1101 -> low nibble in the high half of scales[5],
  // high bits at bit 2*(13/4) = 6 of scales[8 + 13 % 4] = scales[9].
  const uint8_t code13 = 45;
  b.scales[5] = uint8_t((code13 & 15) << 4);
  b.scales[9] = uint8_t((code13 >> 4) << 6);
  EXPECT_EQ(quant::q3_k_scale_code(b.scales, 13), 45);
  // Element 210 (sub-block 13): half 1, bit pair (210 - 128) / 32 = 2, l = 210 % 32 = 18.
  b.qs[32 + 18] = uint8_t(3 << 4);
  b.hmask[210 % 32] = uint8_t(1 << (210 / 32));  // high bit set: q = 3 + 4 - 4 = 3
  const auto y = decode(GgmlType::Q3_K, b);
  EXPECT_EQ(y[210], 2.0f * (45 - 32) * 3);
  EXPECT_EQ(y[211], 2.0f * (45 - 32) * -4);  // low 0, high bit clear: q = -4
  EXPECT_EQ(y[0], 2.0f * (0 - 32) * -4);     // code 0 means scale -32
}

TEST(KQuantBlocks, Q3KScalePackingRoundTrips) {
  std::mt19937 rng(3);
  for (int trial = 0; trial < 100; ++trial) {
    uint8_t codes[16], scales[12];
    for (auto& c : codes) c = uint8_t(rng() % 64);
    quant::q3_k_pack_scales(codes, scales);
    for (int j = 0; j < 16; ++j) EXPECT_EQ(quant::q3_k_scale_code(scales, j), codes[j]) << j;
  }
}

TEST(KQuantBlocks, Q4KAndQ5KScalesAndBits) {
  BlockQ4K b{};
  b.d = f32_to_f16(1.0f);
  b.dmin = f32_to_f16(0.5f);
  // Sub-block 1: scale 20, min 5 (6 bits in place). Sub-block 6: scale 0b11'0111 = 55,
  // min 0b10'1001 = 41 (nibbles in byte 10, top bits in bytes 2 and 6).
  b.scales[1] = 20;
  b.scales[5] = 5;
  b.scales[10] = uint8_t(0x7 | (0x9 << 4));
  b.scales[2] |= uint8_t(3 << 6);
  b.scales[6] |= uint8_t(2 << 6);
  b.qs[7] = 0xc0;        // element 32 + 7 (sub-block 1) = 12; element 7 (sub-block 0) = 0
  b.qs[96 + 3] = 0x0b;   // element 192 + 3 (sub-block 6) = 11
  auto y = decode(GgmlType::Q4_K, b);
  EXPECT_EQ(y[39], 1.0f * 20 * 12 - 0.5f * 5);
  EXPECT_EQ(y[195], 1.0f * 55 * 11 - 0.5f * 41);
  EXPECT_EQ(y[196], -0.5f * 41);

  BlockQ5K c{};
  c.d = b.d;
  c.dmin = b.dmin;
  std::memcpy(c.scales, b.scales, 12);
  std::memcpy(c.qs, b.qs, 128);
  c.qh[3] = uint8_t(1 << 6);  // 5th bit of element 64*3 + 3 = 195
  c.qh[7] = uint8_t(1 << 1);  // 5th bit of element 64*0 + 32 + 7 = 39
  y = decode(GgmlType::Q5_K, c);
  EXPECT_EQ(y[39], 1.0f * 20 * (12 + 16) - 0.5f * 5);
  EXPECT_EQ(y[195], 1.0f * 55 * (11 + 16) - 0.5f * 41);
}

TEST(KQuantBlocks, Q6KFields) {
  BlockQ6K b{};
  std::memset(b.ql, 0, sizeof b.ql);
  // Every code 32 (value 0): low nibble 0, high bits 2 -> qh bytes 0b10101010.
  std::memset(b.qh, 0xaa, sizeof b.qh);
  b.d = f32_to_f16(0.125f);
  for (int j = 0; j < 16; ++j) b.scales[j] = int8_t(j - 8);
  // Element 128 + 64 + 9 = 201: high nibble of ql[64 + 9], bits 4-5 of qh[32 + 9]; code 63.
  b.ql[64 + 9] = 0xf0;
  b.qh[32 + 9] = uint8_t((b.qh[32 + 9] & ~0x30) | (3 << 4));
  // Element 32 + 4 = 36: low nibble of ql[32 + 4], bits 2-3 of qh[4]; code 0.
  b.qh[4] = uint8_t(b.qh[4] & ~0x0c);
  const auto y = decode(GgmlType::Q6_K, b);
  EXPECT_EQ(y[201], 0.125f * float(201 / 16 - 8) * 31);
  EXPECT_EQ(y[36], 0.125f * float(36 / 16 - 8) * -32);
  int nonzero = 0;
  for (float v : y) nonzero += v != 0;
  EXPECT_EQ(nonzero, 2);
}

TEST(KQuantBlocks, Q8KQuantizesAsGgml) {
  std::vector<float> x(256);
  for (int i = 0; i < 256; ++i) x[size_t(i)] = std::sin(0.37f * float(i)) * 3.0f;
  x[100] = -4.0f;  // the signed value of largest magnitude
  BlockQ8K b;
  quant::quantize_block_q8_k(x.data(), &b);
  EXPECT_EQ(b.qs[100], -127);  // iscale = -127 / max maps max to -127 (d is positive)
  EXPECT_EQ(b.d, 1 / (-127.f / -4.0f));
  for (int k = 0; k < 16; ++k) {
    int sum = 0;
    for (int l = 0; l < 16; ++l) sum += b.qs[16 * k + l];
    EXPECT_EQ(b.bsums[k], sum) << k;
  }
  const auto y = decode(GgmlType::Q8_K, b);
  for (int i = 0; i < 256; ++i) EXPECT_NEAR(y[size_t(i)], x[size_t(i)], 4.0 / 254 * 1.0001) << i;
}

// Random bytes (with finite f16 scales): the codec's dequantization equals the spec decoder's.
TEST(KQuantBlocks, RandomBlocksDecodeAsSpec) {
  std::mt19937 rng(11);
  for (GgmlType type : {GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K,
                        GgmlType::Q6_K, GgmlType::Q8_K}) {
    SCOPED_TRACE(ggml_type_display_name(type));
    const quant::Codec& c = quant::codec(type);
    const int n_blocks = 64;
    std::vector<uint8_t> bytes(size_t(n_blocks) * c.type_size);
    for (auto& v : bytes) v = uint8_t(rng());
    for (int i = 0; i < n_blocks; ++i) {  // keep the scales finite: exponent bits below 0x7c00
      uint8_t* blk = bytes.data() + size_t(i) * c.type_size;
      auto fix16 = [&](int off) { blk[off + 1] &= 0x5f; };
      switch (type) {
        case GgmlType::Q2_K: fix16(80); fix16(82); break;
        case GgmlType::Q3_K: fix16(108); break;
        case GgmlType::Q4_K: case GgmlType::Q5_K: fix16(0); fix16(2); break;
        case GgmlType::Q6_K: fix16(208); break;
        default: { const float d = 0.01f * float(i + 1); std::memcpy(blk, &d, 4); }
      }
    }
    std::vector<float> y(size_t(n_blocks) * 256);
    c.dequantize(bytes.data(), y.data(), int64_t(y.size()));
    const auto spec = test::spec_decode_k_all(type, bytes.data(), int64_t(y.size()));
    EXPECT_EQ(0, std::memcmp(spec.data(), y.data(), y.size() * sizeof(float)));
  }
}

// The exported per-block functions are what the codec rows run.
TEST(KQuantBlocks, PerBlockFunctionsMatchCodecRows) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0, 1);
  std::vector<float> x(256), qw(256);
  for (auto& v : x) v = normal(rng);
  for (auto& v : qw) v = 1.0f + std::fabs(normal(rng));
  auto check = [&](GgmlType type, auto block, auto fn) {
    fn(x.data(), qw.data(), &block);
    std::vector<uint8_t> row(sizeof block);
    quant::codec(type).quantize(x.data(), row.data(), 1, 256, qw.data());
    EXPECT_EQ(0, std::memcmp(row.data(), &block, sizeof block)) << ggml_type_display_name(type);
  };
  check(GgmlType::Q2_K, BlockQ2K{}, quant::quantize_block_q2_k);
  check(GgmlType::Q3_K, BlockQ3K{}, quant::quantize_block_q3_k);
  check(GgmlType::Q4_K, BlockQ4K{}, quant::quantize_block_q4_k);
  check(GgmlType::Q5_K, BlockQ5K{}, quant::quantize_block_q5_k);
  check(GgmlType::Q6_K, BlockQ6K{}, quant::quantize_block_q6_k);
}

// The searches' contracts on a small example: codes in range, scale reproduces the data.
TEST(KQuantSearches, CodesInRangeAndScaleFits) {
  const float x[16] = {0.1f, -0.4f, 0.9f, 0.3f, -1.2f, 0.0f, 0.5f, 0.7f,
                       -0.2f, 0.6f, 1.1f, -0.9f, 0.25f, 0.05f, -0.6f, 0.8f};
  float w[16];
  for (int i = 0; i < 16; ++i) w[i] = 1.0f + 0.1f * float(i);
  uint8_t codes[16];
  float neg_min = 0;
  const float s = quant::asym_scale_search_ref(16, 3, x, w, codes, &neg_min, -0.5f, 0.1f, 15, true);
  EXPECT_GT(s, 0.0f);
  EXPECT_GE(neg_min, 0.0f);
  for (int i = 0; i < 16; ++i) {
    EXPECT_LE(codes[i], 3);
    EXPECT_NEAR(s * float(codes[i]) - neg_min, x[i], 0.5f);
  }
  const float q3 = quant::q3_ref_scale_search(16, 4, x, codes);
  for (int i = 0; i < 16; ++i) {
    EXPECT_LE(codes[i], 7);
    EXPECT_NEAR(q3 * float(codes[i] - 4), x[i], 0.3f);
  }
  const float pos[8] = {0.5f, 0.1f, 0.0f, 0.9f, 0.33f, 0.7f, 0.25f, 0.05f};
  const float pw[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  const float d = quant::pos_scale_search(8, 63, pos, pw, codes);
  for (int i = 0; i < 8; ++i) {
    EXPECT_LE(codes[i], 63);
    EXPECT_NEAR(d * float(codes[i]), pos[i], 0.01f);
  }
  const float zeros[8] = {};
  EXPECT_EQ(quant::pos_scale_search(8, 63, zeros, pw, codes), 0.0f);
  EXPECT_EQ(codes[0], 0);
}

}  // namespace
}  // namespace imq
