// Malformed imatrix files: every reader throws one imq::Error naming the file (and the tensor
// or offset), never crashes or loads garbage. Truncations and byte flips of the reference files
// are swept exhaustively over their headers.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "imatrix_test_util.h"
#include "imq/error.h"
#include "imq/ggml_types.h"
#include "imq/gguf.h"

namespace imq::test {
namespace {

using namespace imq::imatrix;

struct T {
  std::string name;
  GgmlType type;
  std::vector<int64_t> ne;
  std::vector<float> v;
};

// A GGUF file with the imatrix keys and the given tensors (F32 data from v, or F16 zeros).
void write_raw(const std::string& path, const std::vector<T>& tensors, uint32_t chunk_size = 4,
               const char* type = "imatrix") {
  gguf::Writer w;
  w.set("general.type", gguf::Value::str(type));
  w.set("imatrix.datasets", gguf::Value::string_array({"d.txt"}));
  w.set("imatrix.chunk_count", gguf::Value::u32(1));
  w.set("imatrix.chunk_size", gguf::Value::u32(chunk_size));
  for (const auto& t : tensors) {
    int64_t n = 1;
    for (auto x : t.ne) n *= x;
    std::vector<uint8_t> data(size_t(n) * (t.type == GgmlType::F32 ? 4 : 2), 0);
    if (t.type == GgmlType::F32) std::memcpy(data.data(), t.v.data(), std::min(data.size(), t.v.size() * 4));
    w.add_tensor(t.name, t.type, t.ne, std::move(data));
  }
  w.write(path);
}

constexpr GgmlType kF32 = GgmlType::F32, kF16 = GgmlType::F16;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(BadInput, GgufSemantics) {
  TempDir d;
  const std::string p = d.file("x.gguf");
  auto check = [&](const std::vector<T>& t, const std::string& needle, const char* type = "imatrix") {
    write_raw(p, t, 4, type);
    const std::string e = error_of([&] { read_gguf(p); });
    EXPECT_NE(e.find(p), std::string::npos) << e;
    EXPECT_NE(e.find(needle), std::string::npos) << "want '" << needle << "' in: " << e;
  };
  check({{"a.weight.in_sum2", kF32, {4}, {1, 2, 3, 4}}}, "no partner a.weight.counts");
  check({{"a.weight.counts", kF32, {1}, {4}}}, "no partner a.weight.in_sum2");
  check({{"a.weight.in_sum2", kF32, {4}, {1, 2, 3, 4}}, {"a.weight.counts", kF16, {1}, {}}}, "expected F32");
  check({{"a.weight.in_sum2", kF32, {5}, {1, 2, 3, 4, 5}}, {"a.weight.counts", kF32, {1, 2}, {4, 4}}},
        "a.weight: 5 sums are not a non-empty multiple of 2 counts");
  check({{"a.weight.in_sum2", kF32, {2}, {1, NAN}}, {"a.weight.counts", kF32, {1}, {4}}}, "a.weight: value 1 is nan");
  check({{"a.weight.in_sum2", kF32, {2}, {1, -2}}, {"a.weight.counts", kF32, {1}, {4}}}, "cannot be negative");
  check({{"a.weight.in_sum2", kF32, {2}, {1, 2}}, {"a.weight.counts", kF32, {1}, {-4}}}, "count -4 of slot 0");
  check({{"a.weight", kF32, {2}, {1, 2}}}, "no imatrix tensors");
  check({{"a.weight.in_sum2", kF32, {2}, {1, 2}}, {"a.weight.counts", kF32, {1}, {4}}}, "not an imatrix file", "model");
  // NaN is accepted for statistics when asked for.
  write_raw(p, {{"a.weight.in_sum2", kF32, {2}, {1, NAN}}, {"a.weight.counts", kF32, {1}, {4}}});
  ReadOptions ro;
  ro.allow_non_finite = true;
  EXPECT_EQ(read_gguf(p, ro).entries.size(), 1u);
}

TEST(BadInput, ChunkSizeMismatchAndShapeMismatchNameBothFiles) {
  TempDir d;
  write_raw(d.file("a.gguf"), {{"w.in_sum2", kF32, {2}, {1, 2}}, {"w.counts", kF32, {1}, {4}}}, 4);
  write_raw(d.file("b.gguf"), {{"w.in_sum2", kF32, {2}, {1, 2}}, {"w.counts", kF32, {1}, {8}}}, 8);
  write_raw(d.file("c.gguf"), {{"w.in_sum2", kF32, {3}, {1, 2, 3}}, {"w.counts", kF32, {1}, {4}}}, 4);
  std::vector<MergeInput> ab = {{d.file("a.gguf"), read_gguf(d.file("a.gguf"))}, {d.file("b.gguf"), read_gguf(d.file("b.gguf"))}};
  std::string e = error_of([&] { merge(ab); });
  EXPECT_NE(e.find("chunk sizes differ"), std::string::npos) << e;
  EXPECT_NE(e.find("a.gguf has 4"), std::string::npos) << e;
  EXPECT_NE(e.find("b.gguf has 8"), std::string::npos) << e;
  MergeOptions mo;
  mo.allow_chunk_size_mismatch = true;
  EXPECT_EQ(merge(ab, mo).entries.at("w").counts[0], 12.0f);

  std::vector<MergeInput> ac = {{d.file("a.gguf"), read_gguf(d.file("a.gguf"))}, {d.file("c.gguf"), read_gguf(d.file("c.gguf"))}};
  e = error_of([&] { merge(ac); });
  EXPECT_NE(e.find("tensor w: 2 values in " + d.file("a.gguf") + " but 3 in " + d.file("c.gguf")), std::string::npos) << e;
}

TEST(BadInput, DatFields) {
  TempDir d;
  const std::string p = d.file("x.dat");
  auto i32 = [](int32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); };
  auto f32 = [](float v) { return std::string(reinterpret_cast<const char*>(&v), 4); };
  auto check = [&](const std::string& bytes, const std::string& needle) {
    write_bytes(p, bytes);
    const std::string e = error_of([&] { read_dat(p); });
    EXPECT_NE(e.find(p), std::string::npos) << e;
    EXPECT_NE(e.find(needle), std::string::npos) << "want '" << needle << "' in: " << e;
  };
  const std::string entry = i32(1) + "w" + i32(2) + i32(2) + f32(1) + f32(2);
  check("", "empty file");
  check(i32(0), "entry count 0");
  check(i32(-3), "entry count -3");
  check(i32(1000) + entry, "entry count 1000 cannot fit");
  check(i32(1) + i32(0) + "w" + i32(2) + i32(2) + f32(1) + f32(2), "name length 0");
  check(i32(1) + i32(1) + "w" + i32(0) + i32(2) + f32(1) + f32(2), "ncall 0");
  check(i32(1) + i32(1) + "w" + i32(2) + i32(3) + f32(1) + f32(2), "value count 3");
  check(i32(2) + entry + entry, "duplicate name");
  check(i32(1) + i32(1) + "w" + i32(2) + i32(2) + f32(1) + f32(NAN), "value 1 is nan");
  check(i32(1) + entry + i32(2) + i32(50) + "abc", "dataset name length 50");
  check(i32(1) + entry + i32(2) + i32(3) + "abcXY", "2 unexpected bytes");
  check(i32(1) + entry + "ab", "truncated");
  // Without a trailer (old files) the chunk count is the largest ncall.
  write_bytes(p, i32(1) + entry);
  Imatrix m = read_dat(p);
  EXPECT_EQ(m.chunk_count, 2u);
  EXPECT_TRUE(m.datasets.empty());
  EXPECT_EQ(m.entries.at("w").counts[0], 2.0f * 512);
  EXPECT_EQ(m.entries.at("w").sums[1], 2.0f * 512);
}

// Every truncation and a byte flip at every header position of the reference files: an Error
// or a valid imatrix, never a crash (run under the sanitizer build too).
TEST(BadInput, TruncationsAndFlipsOfReferenceFiles) {
  IMQ_NEED_SHARED(gguf_path, "reference/stories260K/imatrix-calib-c128.gguf");
  IMQ_NEED_SHARED(dat_path, "reference/stories260K/imatrix-calib-c128.dat");
  TempDir d;
  for (const auto& src : {gguf_path, dat_path}) {
    const std::string bytes = read_all(src);
    const std::string p = d.file(src == gguf_path ? "t.gguf" : "t.dat");
    size_t n_errors = 0;
    for (size_t cut = 0; cut < bytes.size(); cut += (cut < 160 ? 1 : 97)) {
      write_bytes(p, bytes.substr(0, cut));
      const std::string e = error_of([&] { load(p); });
      // A .dat cut exactly after an entry (or after the trailer's chunk count) is still valid.
      if (!e.empty()) {
        ++n_errors;
        EXPECT_NE(e.find(p), std::string::npos) << e;
      }
    }
    EXPECT_GT(n_errors, 200u);
    for (size_t i = 0; i < std::min<size_t>(bytes.size(), 400); i += 2) {
      std::string flipped = bytes;
      flipped[i] = char(flipped[i] ^ 0x80);
      write_bytes(p, flipped);
      const std::string e = error_of([&] { load(p); });
      if (!e.empty()) {
        EXPECT_NE(e.find(p), std::string::npos) << e;
      }
    }
  }
}

TEST(Cimatrix, ModulePathsMapToGgufNames) {
  EXPECT_EQ(cimatrix_weight_name("model.layers.2.self_attn.q_proj"), "blk.2.attn_q.weight");
  EXPECT_EQ(cimatrix_weight_name("model.layers.0.self_attn.o_proj"), "blk.0.attn_output.weight");
  EXPECT_EQ(cimatrix_weight_name("model.layers.11.mlp.down_proj"), "blk.11.ffn_down.weight");
  EXPECT_EQ(cimatrix_weight_name("model.layers.3.block_sparse_moe.gate"), "blk.3.ffn_gate_inp.weight");
  EXPECT_EQ(cimatrix_weight_name("model.layers.3.block_sparse_moe.experts.w2"), "blk.3.ffn_down_exps.weight");
  EXPECT_EQ(cimatrix_weight_name("model.layers.3.mlp.experts.up_proj"), "blk.3.ffn_up_exps.weight");
  EXPECT_EQ(cimatrix_weight_name("lm_head"), "output.weight");
  EXPECT_EQ(cimatrix_weight_name("model.embed_tokens"), "");
  EXPECT_EQ(cimatrix_weight_name("model.layers.x.mlp.up_proj"), "");
  EXPECT_EQ(cimatrix_weight_name("model.layers.1.mlp.sideways_proj"), "");
}

}  // namespace
}  // namespace imq::test
