#include <gtest/gtest.h>

#include <atomic>
#include <bit>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/atomic_file.h"
#include "core/byte_reader.h"
#include "core/checked.h"
#include "core/fp16.h"
#include "core/thread_pool.h"
#include "test_util_impl.h"

namespace imq {
namespace {

TEST(Fp16, EveryHalfRoundTrips) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    float f = f16_to_f32(uint16_t(h));
    _Float16 hw = static_cast<_Float16>(f);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(float(hw)));
      continue;
    }
    EXPECT_EQ(float(hw), f) << h;  // decode agrees with the compiler's half type
    EXPECT_EQ(f32_to_f16(f), h) << h;
  }
}

TEST(Fp16, EncodeMatchesHardwareRounding) {
  // A dense sweep over float bit patterns (every 97th) covers normals, subnormals, ties, overflow.
  for (uint64_t x = 0; x < 0x100000000ull; x += 97) {
    float f = std::bit_cast<float>(uint32_t(x));
    if (std::isnan(f)) continue;
    _Float16 hw = static_cast<_Float16>(f);
    ASSERT_EQ(f32_to_f16(f), std::bit_cast<uint16_t>(hw)) << std::hex << x;
  }
}

TEST(Bf16, RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3f808000u)), 0x3f80);  // tie -> even
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3f818000u)), 0x3f82);  // tie -> even (up)
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3f808001u)), 0x3f81);
  EXPECT_EQ(bf16_to_f32(0xc000), -2.0f);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
}

TEST(ByteReader, ReportsOffsetAndField) {
  uint8_t buf[6] = {1, 0, 0, 0, 7, 0};
  ByteReader r({buf, 6}, "x.bin");
  EXPECT_EQ(r.read<uint32_t>("count"), 1u);
  try {
    r.read<uint32_t>("length");
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "x.bin: offset 4: truncated length: need 4 bytes, 2 left");
  }
}

TEST(Checked, Overflow) {
  EXPECT_EQ(checked_mul(1ull << 31, 4, "n"), 1ull << 33);
  EXPECT_THROW(checked_mul(1ull << 60, 1ull << 10, "n"), Error);
  EXPECT_THROW(checked_add(~0ull, 1, "n"), Error);
}

TEST(ThreadPool, CoversRangeOnceAndPropagatesErrors) {
  ThreadPool pool(3);
  std::vector<std::atomic<int>> hits(1000);
  pool.parallel_for(1000, [&](size_t b, size_t e, int) {
    for (size_t i = b; i < e; ++i) hits[i]++;
  }, 7);
  for (auto& h : hits) EXPECT_EQ(h.load(), 1);
  EXPECT_THROW(pool.parallel_for(10, [](size_t b, size_t, int) {
    if (b > 0) throw Error("boom");
  }), Error);
  // the pool is still usable after an error
  std::atomic<size_t> sum = 0;
  pool.parallel_for(100, [&](size_t b, size_t e, int) { for (size_t i = b; i < e; ++i) sum += i; });
  EXPECT_EQ(sum.load(), 4950u);
}

TEST(AtomicFile, UncommittedLeavesOldFileAndNoTemp) {
  test::TempDir d;
  std::string p = d.file("out.bin");
  { std::ofstream(p) << "old"; }
  {
    AtomicFile f(p);
    f.write("new data", 8);
  }  // not committed
  EXPECT_EQ(test::read_all(p), "old");
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(d.path()), {}), 1);
  {
    AtomicFile f(p);
    f.write("new data", 8);
    f.pwrite(0, "N", 1);
    f.commit();
  }
  EXPECT_EQ(test::read_all(p), "New data");
}

TEST(AtomicFile, MissingDirectoryIsAClearError) {
  try {
    AtomicFile f("/nonexistent-dir-imq/out.gguf");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos);
  }
}

}  // namespace
}  // namespace imq
