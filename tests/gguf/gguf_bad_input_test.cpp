// Every malformed-file case is rejected with one line naming the file, the offset and what
// was expected; never a crash, a hang or a huge allocation. Each test builds its bad file.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>

#include "common/gguf_bytes.h"
#include "imq/gguf.h"
#include "test_util.h"

namespace imq {
namespace {

using test::Bytes;

// A valid file: 1 KV (UINT32), 2 F32 tensors of 8 and 3 elements.
Bytes valid_file() { return test::valid_gguf(); }

class BadGguf : public ::testing::Test {
 protected:
  std::string write(const Bytes& f) {
    std::string p = dir_.file("bad.gguf");
    std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(f.b.data()), std::streamsize(f.b.size()));
    return p;
  }
  // Expects open() to throw with a message that names the file, the offset and `needle`.
  void expect_rejected(const Bytes& f, const std::string& needle, const std::string& offset = "") {
    std::string p = write(f);
    try {
      gguf::File::open(p);
      FAIL() << "accepted a bad file; expected: " << needle;
    } catch (const Error& e) {
      std::string m = e.what();
      EXPECT_EQ(m.rfind(p, 0), 0u) << m;
      bool found = false;  // needle may list alternatives separated by '|'
      for (size_t b = 0, e; b <= needle.size(); b = e + 1) {
        e = needle.find('|', b);
        if (e == std::string::npos) e = needle.size();
        found = found || m.find(needle.substr(b, e - b)) != std::string::npos;
      }
      EXPECT_TRUE(found) << m << " (expected " << needle << ")";
      if (!offset.empty()) {
        EXPECT_NE(m.find("offset " + offset + ":"), std::string::npos) << m;
      }
      EXPECT_EQ(m.find('\n'), std::string::npos) << "one line: " << m;
    }
  }
  test::TempDir dir_;
};

TEST_F(BadGguf, ValidFileOpens) {
  auto f = gguf::File::open(write(valid_file()));
  ASSERT_EQ(f.tensors().size(), 2u);
  EXPECT_EQ(f.tensor("b").offset, 32u);
  EXPECT_EQ(reinterpret_cast<const float*>(f.tensor_data(f.tensor("a")).data())[7], 7.0f);
}

TEST_F(BadGguf, EmptyAndTruncated) {
  expect_rejected(Bytes{}, "too short", "0");
  Bytes f = valid_file();
  for (size_t cut : {6, 20, 40, 60, 90, 120}) {
    Bytes t;
    t.b.assign(f.b.begin(), f.b.begin() + long(cut));
    expect_rejected(t, "truncated|cannot fit|runs past the end");
  }
  Bytes t;  // header intact, tensor data cut short
  t.b.assign(f.b.begin(), f.b.end() - 40);
  expect_rejected(t, "runs past the end of the file");
}

TEST_F(BadGguf, WrongMagic) {
  Bytes f = valid_file();
  f.b[0] = 'X';
  expect_rejected(f, "bad magic", "0");
}

TEST_F(BadGguf, UnknownVersions) {
  for (uint32_t v : {0u, 1u, 4u, 0x03000000u}) {
    Bytes f = valid_file();
    std::memcpy(&f.b[4], &v, 4);
    expect_rejected(f, "version", "4");
  }
}

TEST_F(BadGguf, StringLengthPastEnd) {
  Bytes f;
  f.raw("GGUF", 4).pod<uint32_t>(3).pod<int64_t>(0).pod<int64_t>(1);
  f.pod<uint64_t>(1ull << 40).raw("abcdefghijklmnopqrstuvwxyz", 26);
  expect_rejected(f, "metadata key length 1099511627776 runs past the end", "24");
}

TEST_F(BadGguf, ArrayLengthPastEnd) {
  Bytes f;
  f.raw("GGUF", 4).pod<uint32_t>(3).pod<int64_t>(0).pod<int64_t>(1);
  f.str("k").pod<int32_t>(9).pod<int32_t>(4).pod<uint64_t>(1ull << 61);
  expect_rejected(f, "array of 2305843009213693952 UINT32 runs past the end");
  Bytes g;  // array of strings whose count fits the bytes but a string does not
  g.raw("GGUF", 4).pod<uint32_t>(3).pod<int64_t>(0).pod<int64_t>(1);
  g.str("k").pod<int32_t>(9).pod<int32_t>(8).pod<uint64_t>(1).pod<uint64_t>(99);
  expect_rejected(g, "length 99 runs past the end");
}

TEST_F(BadGguf, NestedArraysAreRead) {
  Bytes f;
  f.raw("GGUF", 4).pod<uint32_t>(3).pod<int64_t>(0).pod<int64_t>(1);
  f.str("k").pod<int32_t>(9).pod<int32_t>(9).pod<uint64_t>(2);
  f.pod<int32_t>(4).pod<uint64_t>(1).pod<uint32_t>(7);
  f.pod<int32_t>(8).pod<uint64_t>(1).str("x");
  auto g = gguf::File::open(write(f));
  const auto& a = g.get("k").as_array();
  ASSERT_EQ(a.items.size(), 2u);
  EXPECT_EQ(a.items[0].as_array().items[0].as_int(), 7);
  EXPECT_EQ(a.items[1].as_array().items[0].as_string(), "x");
}

TEST(GgufValue, FloatAsIntIsCheckedBeforeTheCast) {
  // Issue 15 (fuzz_gguf, UBSan): casting NaN or a float outside int64 is undefined.
  auto error_of = [](const gguf::Value& v) -> std::string {
    try {
      (void)v.as_int();
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  EXPECT_EQ(gguf::Value::f32(3.75f).as_int(), 3);
  EXPECT_EQ(gguf::Value::f32(-0x1p63f).as_int(), INT64_MIN);
  EXPECT_EQ(error_of(gguf::Value::f32(1e31f)), "FLOAT32 1e+31 is not an integer in the int64 range");
  EXPECT_EQ(error_of(gguf::Value::f32(0x1p63f)), "FLOAT32 9.223372e+18 is not an integer in the int64 range");
  EXPECT_EQ(error_of(gguf::Value::f32(NAN)), "FLOAT32 nan is not an integer in the int64 range");
  EXPECT_EQ(error_of(gguf::Value{gguf::ValueType::FLOAT64, -1e300}), "FLOAT64 -1e+300 is not an integer in the int64 range");
}

TEST_F(BadGguf, UnknownValueTypeAndBadBool) {
  Bytes f;
  f.raw("GGUF", 4).pod<uint32_t>(3).pod<int64_t>(0).pod<int64_t>(1);
  f.str("k").pod<int32_t>(13).pod<uint32_t>(0);
  expect_rejected(f, "unknown value type 13");
  Bytes g;
  g.raw("GGUF", 4).pod<uint32_t>(3).pod<int64_t>(0).pod<int64_t>(1);
  g.str("k").pod<int32_t>(7).pod<uint8_t>(2);
  expect_rejected(g, "BOOL value 2");
}

TEST_F(BadGguf, DuplicateKey) {
  Bytes f;
  f.raw("GGUF", 4).pod<uint32_t>(3).pod<int64_t>(0).pod<int64_t>(2);
  f.str("k").pod<int32_t>(4).pod<uint32_t>(1);
  f.str("k").pod<int32_t>(4).pod<uint32_t>(2);
  expect_rejected(f, "duplicate metadata key k");
}

TEST_F(BadGguf, TensorDataPastEnd) {
  Bytes f;
  f.raw("GGUF", 4).pod<uint32_t>(3).pod<int64_t>(1).pod<int64_t>(0);
  f.str("a").pod<uint32_t>(2).pod<int64_t>(1024).pod<int64_t>(1024).pod<uint32_t>(0).pod<uint64_t>(0);
  f.pad(32);
  expect_rejected(f, "tensor a data (4194304 bytes) runs past the end");
}

TEST_F(BadGguf, OverlappingAndMisalignedData) {
  Bytes f = valid_file();
  // tensor b's offset field: patch 32 -> 0 (overlaps a), then 16 (misaligned)
  auto patch = [&](uint64_t v) {
    Bytes g = f;
    g.patch(test::kValidGgufOffsetOfB, v);
    return g;
  };
  expect_rejected(patch(0), "tensor b: data offset 0 (expected 32");
  expect_rejected(patch(16), "tensor b: data offset 16 (expected 32");
}

TEST_F(BadGguf, UnknownTypeAndBadDims) {
  Bytes f;
  f.raw("GGUF", 4).pod<uint32_t>(3).pod<int64_t>(1).pod<int64_t>(0);
  f.str("a").pod<uint32_t>(1).pod<int64_t>(32).pod<uint32_t>(4).pod<uint64_t>(0);
  expect_rejected(f, "tensor a: unknown type id 4");
  Bytes g;
  g.raw("GGUF", 4).pod<uint32_t>(3).pod<int64_t>(1).pod<int64_t>(0);
  g.str("a").pod<uint32_t>(5);
  for (int i = 0; i < 5; ++i) g.pod<int64_t>(1);
  g.pod<uint32_t>(0).pod<uint64_t>(0);
  expect_rejected(g, "tensor a: n_dims 5 (expected 1..4)");
  Bytes h;  // q4_0 row of 33 elements
  h.raw("GGUF", 4).pod<uint32_t>(3).pod<int64_t>(1).pod<int64_t>(0);
  h.str("a").pod<uint32_t>(1).pod<int64_t>(33).pod<uint32_t>(2).pod<uint64_t>(0);
  expect_rejected(h, "row length 33 is not a multiple of q4_0's block size 32");
  Bytes k;  // element count overflow
  k.raw("GGUF", 4).pod<uint32_t>(3).pod<int64_t>(1).pod<int64_t>(0);
  k.str("a").pod<uint32_t>(3).pod<int64_t>(1ll << 40).pod<int64_t>(1ll << 40).pod<int64_t>(1ll << 40);
  k.pod<uint32_t>(0).pod<uint64_t>(0);
  expect_rejected(k, "overflow");
}

TEST_F(BadGguf, AbsurdCounts) {
  Bytes f;
  f.raw("GGUF", 4).pod<uint32_t>(3).pod<int64_t>(1ll << 60).pod<int64_t>(0);
  expect_rejected(f, "tensor count 1152921504606846976 cannot fit", "8");
  Bytes g;
  g.raw("GGUF", 4).pod<uint32_t>(3).pod<int64_t>(0).pod<int64_t>(1ll << 60);
  expect_rejected(g, "metadata count 1152921504606846976 cannot fit", "16");
  Bytes h;
  h.raw("GGUF", 4).pod<uint32_t>(3).pod<int64_t>(-1).pod<int64_t>(0);
  expect_rejected(h, "negative tensor count");
}

TEST_F(BadGguf, BadAlignment) {
  Bytes f = valid_file();
  // general.alignment value 32 -> 24
  f.patch(test::kValidGgufAlignmentValue, uint32_t(24));
  expect_rejected(f, "general.alignment 24 is not a power of two");
}

TEST_F(BadGguf, CommandLineSaysOneLineAndExitsOne) {
  Bytes f = valid_file();
  f.b[0] = 'X';
  auto r = test::run_imq("info " + write(f));
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("bad magic"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  auto m = test::run_imq("info /nonexistent/x.gguf");
  EXPECT_EQ(m.rc, 1);
  EXPECT_NE(m.err.find("cannot open"), std::string::npos);
}

}  // namespace
}  // namespace imq
