// The bad-input corpus (issue 15): every reader meets hostile files through the command line.
// Each case writes its bad input(s) into a fresh directory and runs imq on them; imq must exit
// with status 1 (no signal, no hang) and one stderr line that names the file, the offset or
// tensor, and what was expected, and leave no output or temporary file behind. The byte-level
// GGUF checks of the library live in tests/gguf; here every reader is reached as a user does.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <set>

#include "common/gguf_bytes.h"
#include "common/run_child.h"
#include "imq/ggml_types.h"
#include "imq/gguf.h"
#include "imq/imatrix.h"
#include "imq/model.h"
#include "test_util.h"

namespace imq::test {
namespace {

namespace fs = std::filesystem;

constexpr GgmlType kF32 = GgmlType::F32, kF16 = GgmlType::F16;

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

std::string i32(int32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); }
std::string u64(uint64_t v) { return std::string(reinterpret_cast<const char*>(&v), 8); }
std::string f32(float v) { return std::string(reinterpret_cast<const char*>(&v), 4); }
std::string f32s(size_t n, float v) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += f32(v);
  return s;
}

// The good inputs every case starts from: a tiny dense model (n_embd 64, n_ff 96), a MoE
// model, an imatrix of the dense model, a calibration text. Written once per test run.
struct Inputs {
  TempDir dir;
  std::string model, moe, imatrix, text;
  Inputs() {
    model::SynthOptions o;
    o.n_embd = 64, o.n_layer = 2, o.n_head = 4, o.n_head_kv = 2, o.n_ff = 96, o.n_vocab = 300;
    model = dir.file("model.gguf");
    model::write_synthetic_model(o, model);
    o.moe = true, o.n_expert = 4, o.n_ff = 48;
    moe = dir.file("moe.gguf");
    model::write_synthetic_model(o, moe);
    imatrix::Imatrix m;
    m.chunk_size = 32, m.chunk_count = 1, m.datasets = {"text.txt"};
    const gguf::File f = gguf::File::open(model);  // kept: tensors() refers into it
    for (const auto& t : f.tensors())
      if (t.name.starts_with("blk.") && t.n_dims == 2)
        m.entries[t.name] = {std::vector<float>(size_t(t.ne[0]), 32.0f), {32.0f}};
    imatrix = dir.file("imatrix.gguf");
    imatrix::write_gguf(m, imatrix);
    text = dir.file("text.txt");
    std::string words;
    for (int i = 0; i < 400; ++i) words += "the cat sat on mat " + std::to_string(i % 17) + " ";
    write_file(text, words + "\n");
  }
};

const Inputs& inputs() {
  static const Inputs in;
  return in;
}

// Copies the dense model to `dst`, letting `edit` change the metadata and `keep` drop tensors.
void rewrite_model(const std::string& dst, const std::function<void(gguf::Writer&)>& edit,
                   const std::function<bool(const gguf::TensorInfo&)>& keep = {}) {
  auto f = gguf::File::open(inputs().model);
  gguf::Writer w;
  for (const auto& kv : f.kvs()) w.set(kv.key, kv.value);
  edit(w);
  for (const auto& t : f.tensors())
    if (!keep || keep(t)) w.add_tensor_view(t.name, t.type, std::vector<int64_t>(t.ne, t.ne + t.n_dims), f.tensor_data(t));
  w.write(dst);
}

struct ImatrixTensor {
  std::string name;
  GgmlType type;
  std::vector<int64_t> ne;
  std::vector<float> v;  // F32 data (missing values are 0); F16 tensors are zeros
};

// A GGUF imatrix with the given tensors, written without the library's validation.
void write_imatrix_gguf(const std::string& path, const std::vector<ImatrixTensor>& ts,
                        const char* type = "imatrix") {
  gguf::Writer w;
  w.set("general.type", gguf::Value::str(type));
  w.set("imatrix.datasets", gguf::Value::string_array({"d.txt"}));
  w.set("imatrix.chunk_count", gguf::Value::u32(1));
  w.set("imatrix.chunk_size", gguf::Value::u32(32));
  for (const auto& t : ts) {
    int64_t n = 1;
    for (auto x : t.ne) n *= x;
    std::vector<uint8_t> data(size_t(n) * (t.type == kF32 ? 4 : 2), 0);
    if (t.type == kF32) std::memcpy(data.data(), t.v.data(), std::min(data.size(), t.v.size() * 4));
    w.add_tensor(t.name, t.type, t.ne, std::move(data));
  }
  w.write(path);
}

// One imatrix entry (in_sum2 + counts) with n sums of value `v` and one count.
std::vector<ImatrixTensor> entry(const std::string& name, size_t n, float v, float count = 32) {
  return {{name + ".in_sum2", kF32, {int64_t(n)}, std::vector<float>(n, v)}, {name + ".counts", kF32, {1}, {count}}};
}

// A legacy .dat entry: name, ncall, values.
std::string dat_entry(const std::string& name, int32_t ncall, const std::string& values, int32_t nval) {
  return i32(int32_t(name.size())) + name + i32(ncall) + i32(nval) + values;
}
// A .cimatrix entry: module path, values.
std::string cim_entry(const std::string& key, const std::string& values, uint64_t n) {
  return u64(key.size()) + key + u64(n) + values;
}

struct Case {
  std::string name;
  std::function<void(const std::string& dir)> make;  // writes the bad input(s) into dir
  // imq's arguments: {d} is the case's directory, {m} the dense model, {moe} the MoE model,
  // {im} its imatrix, {txt} the calibration text.
  std::string args;
  // Each must appear in the error line ('|' separates alternatives): the file, the offset or
  // tensor, what was expected.
  std::vector<std::string> expect;
};

std::string expand(std::string s, const std::string& dir) {
  const std::pair<std::string, std::string> subst[] = {{"{d}", dir},
                                                       {"{moe}", inputs().moe},
                                                       {"{m}", inputs().model},
                                                       {"{im}", inputs().imatrix},
                                                       {"{txt}", inputs().text}};
  for (const auto& [from, to] : subst)
    for (size_t at; (at = s.find(from)) != std::string::npos;) s.replace(at, from.size(), to);
  return s;
}

// Writes the model's bytes truncated to `n` (a fraction of its size when n < 1).
std::function<void(const std::string&)> truncated_model(double n) {
  return [n](const std::string& d) {
    const std::string bytes = read_all(inputs().model);
    write_file(d + "/bad.gguf", bytes.substr(0, n < 1 ? size_t(double(bytes.size()) * n) : size_t(n)));
  };
}

// The model's bytes cut just before its data section, minus `back` bytes (inside the tensor table).
std::function<void(const std::string&)> truncated_model_header(size_t back) {
  return [back](const std::string& d) {
    const std::string bytes = read_all(inputs().model);
    const auto off = gguf::File::open(inputs().model).data_offset();
    write_file(d + "/bad.gguf", bytes.substr(0, size_t(off) - back));
  };
}

std::function<void(const std::string&)> bytes_file(const std::string& name, const Bytes& b) {
  return [name, b](const std::string& d) { write_file(d + "/" + name, b.str_bytes()); };
}
std::function<void(const std::string&)> raw_file(const std::string& name, const std::string& b) {
  return [name, b](const std::string& d) { write_file(d + "/" + name, b); };
}
std::function<void(const std::string&)> imatrix_file(const std::vector<ImatrixTensor>& ts,
                                                     const char* type = "imatrix") {
  return [ts, type](const std::string& d) { write_imatrix_gguf(d + "/bad.gguf", ts, type); };
}

const std::string kQuantize = "quantize {d}/bad.gguf {d}/out.gguf Q8_0";
const std::string kInfo = "info {d}/bad.gguf";
const std::string kConvertGguf = "imatrix convert {d}/bad.gguf -o {d}/out.dat";
const std::string kConvertDat = "imatrix convert {d}/bad.dat -o {d}/out.gguf";
const std::string kConvertCim = "imatrix convert {d}/bad.cimatrix -m {m} -o {d}/out.gguf";
const std::string kQuantGguf = "quantize --imatrix {d}/bad.gguf {m} {d}/out.gguf Q4_K_M";
const std::string kQuantDat = "quantize --imatrix {d}/bad.dat {m} {d}/out.gguf Q4_K_M";
const std::string kCollect = "imatrix -m {m} -f {d}/bad.txt -o {d}/out.gguf -c 32 -t 1";
const std::string kTrunc = "truncated|cannot fit|runs past the end";

std::vector<Case> gguf_model_cases() {
  const Bytes ok = valid_gguf();
  std::vector<Case> v;
  v.push_back({"gguf_empty", raw_file("bad.gguf", ""), kQuantize, {"{d}/bad.gguf", "offset 0", "too short"}});
  v.push_back({"gguf_cut_in_magic", truncated_model(3), kQuantize, {"{d}/bad.gguf", "offset 0", "too short"}});
  v.push_back({"gguf_cut_in_counts", truncated_model(20), kQuantize, {"{d}/bad.gguf", "offset ", kTrunc}});
  v.push_back({"gguf_cut_in_metadata", truncated_model(200), kQuantize, {"{d}/bad.gguf", "offset ", kTrunc}});
  v.push_back({"gguf_cut_in_tensor_table", truncated_model_header(40), kQuantize, {"{d}/bad.gguf", "offset ", kTrunc}});
  v.push_back({"gguf_cut_in_data", truncated_model(0.5), kQuantize, {"{d}/bad.gguf", "offset |tensor ", "runs past the end"}});
  v.push_back({"gguf_cut_last_byte", truncated_model(0.999999), kInfo, {"{d}/bad.gguf", "tensor ", "runs past the end"}});
  v.push_back({"gguf_bad_magic", bytes_file("bad.gguf", Bytes(ok).patch(0, 'X')), kInfo,
               {"{d}/bad.gguf", "offset 0", "bad magic: expected \"GGUF\""}});
  v.push_back({"gguf_version_4", bytes_file("bad.gguf", Bytes(ok).patch(4, uint32_t(4))), kInfo,
               {"{d}/bad.gguf", "offset 4", "(expected 3)"}});
  v.push_back({"gguf_tensor_count_huge", bytes_file("bad.gguf", Bytes(ok).patch(8, int64_t(1) << 60)), kQuantize,
               {"{d}/bad.gguf", "offset 8", "tensor count 1152921504606846976 cannot fit"}});
  v.push_back({"gguf_tensor_count_negative", bytes_file("bad.gguf", Bytes(ok).patch(8, int64_t(-1))), kInfo,
               {"{d}/bad.gguf", "offset 8", "negative tensor count"}});
  v.push_back({"gguf_kv_count_huge", bytes_file("bad.gguf", Bytes(ok).patch(16, int64_t(1) << 60)), kInfo,
               {"{d}/bad.gguf", "offset 16", "metadata count 1152921504606846976 cannot fit"}});
  v.push_back({"gguf_key_length_past_end", bytes_file("bad.gguf", Bytes(ok).patch(24, uint64_t(1) << 40)), kInfo,
               {"{d}/bad.gguf", "offset 24", "key length 1099511627776 runs past the end"}});
  {
    Bytes f = gguf_header(0, 1);
    f.str("k").pod<int32_t>(9).pod<int32_t>(4).pod<uint64_t>(1ull << 61);
    v.push_back({"gguf_array_count_overflows", bytes_file("bad.gguf", f), kInfo,
                 {"{d}/bad.gguf", "offset 41", "array of 2305843009213693952 UINT32 runs past the end"}});
  }
  v.push_back({"gguf_unknown_value_type", bytes_file("bad.gguf", Bytes(ok).patch(49, int32_t(13))), kInfo,
               {"{d}/bad.gguf", "offset 49", "unknown value type 13 (expected 0..12)"}});
  {
    Bytes f = gguf_header(0, 1);
    f.str("k").pod<int32_t>(7).pod<uint8_t>(2);
    v.push_back({"gguf_bool_not_0_or_1", bytes_file("bad.gguf", f), kInfo, {"{d}/bad.gguf", "offset 37", "BOOL value 2 is not 0 or 1"}});
  }
  v.push_back({"gguf_alignment_not_power_of_two",
               bytes_file("bad.gguf", Bytes(ok).patch(kValidGgufAlignmentValue, uint32_t(24))), kInfo,
               {"{d}/bad.gguf", "general.alignment", "24 is not a power of two"}});
  v.push_back({"gguf_alignment_zero", bytes_file("bad.gguf", Bytes(ok).patch(kValidGgufAlignmentValue, uint32_t(0))),
               kInfo, {"{d}/bad.gguf", "general.alignment", "0 is not a power of two"}});
  v.push_back({"gguf_n_dims_5", bytes_file("bad.gguf", Bytes(ok).patch(66, uint32_t(5))), kInfo,
               {"{d}/bad.gguf", "offset 66", "tensor a: n_dims 5 (expected 1..4)"}});
  v.push_back({"gguf_unknown_tensor_type", bytes_file("bad.gguf", Bytes(ok).patch(78, uint32_t(4))), kQuantize,
               {"{d}/bad.gguf", "offset 78", "tensor a: unknown type id 4"}});
  v.push_back({"gguf_negative_dimension", bytes_file("bad.gguf", Bytes(ok).patch(70, int64_t(-8))), kInfo,
               {"{d}/bad.gguf", "offset 70", "tensor a: negative dimension -8"}});
  {
    Bytes f = gguf_header(1, 0);
    f.str("a").pod<uint32_t>(3).pod<int64_t>(1ll << 40).pod<int64_t>(1ll << 40).pod<int64_t>(1ll << 40);
    f.pod<uint32_t>(0).pod<uint64_t>(0);
    v.push_back({"gguf_element_count_overflows", bytes_file("bad.gguf", f), kInfo, {"{d}/bad.gguf", "tensor a element count", "overflow"}});
  }
  {
    // Issue 15 (fuzzing; UBSan in fuzz_gguf): an empty tensor (a zero dimension) whose other dimensions
    // overflowed int64 when n_elements() multiplied them in order.
    Bytes f = gguf_header(1, 0);
    f.str("a").pod<uint32_t>(3).pod<int64_t>(1ll << 62).pod<int64_t>(3).pod<int64_t>(0);
    f.pod<uint32_t>(0).pod<uint64_t>(0);
    v.push_back({"gguf_zero_dimension_hides_overflow", bytes_file("bad.gguf", f), kInfo,
                 {"{d}/bad.gguf", "offset 33",
                  "tensor a: 13835058055282163712 elements (not counting its zero dimensions) is absurd"}});
  }
  {
    Bytes f = gguf_header(1, 0);
    f.str("a").pod<uint32_t>(1).pod<int64_t>(33).pod<uint32_t>(2).pod<uint64_t>(0);
    v.push_back({"gguf_row_not_whole_blocks", bytes_file("bad.gguf", f), kInfo,
                 {"{d}/bad.gguf", "offset 33", "tensor a: row length 33 is not a multiple of q4_0's block size 32"}});
  }
  {
    Bytes f = gguf_header(1, 0);
    f.str("a").pod<uint32_t>(2).pod<int64_t>(1024).pod<int64_t>(1024).pod<uint32_t>(0).pod<uint64_t>(0);
    f.pad(32);
    v.push_back({"gguf_tensor_data_past_end", bytes_file("bad.gguf", f), kQuantize,
                 {"{d}/bad.gguf", "offset 96", "tensor a data (4194304 bytes) runs past the end"}});
  }
  v.push_back({"gguf_overlapping_tensors", bytes_file("bad.gguf", Bytes(ok).patch(kValidGgufOffsetOfB, uint64_t(0))),
               kQuantize, {"{d}/bad.gguf", "offset 115", "tensor b: data offset 0 (expected 32"}});
  v.push_back({"gguf_misaligned_tensor", bytes_file("bad.gguf", Bytes(ok).patch(kValidGgufOffsetOfB, uint64_t(16))),
               kInfo, {"{d}/bad.gguf", "offset 115", "tensor b: data offset 16 (expected 32"}});
  v.push_back({"gguf_offset_past_end", bytes_file("bad.gguf", Bytes(ok).patch(kValidGgufOffsetOfB, uint64_t(1) << 62)),
               kInfo, {"{d}/bad.gguf", "offset 115", "tensor b: data offset 4611686018427387904 (expected 32"}});
  {
    Bytes f = valid_gguf();
    f.b[90 + 8] = 'a';  // tensor b renamed a
    v.push_back({"gguf_duplicate_tensor", bytes_file("bad.gguf", f), kInfo, {"{d}/bad.gguf", "offset 90", "duplicate tensor name a"}});
  }
  {
    Bytes f = gguf_header(0, 2);
    f.str("k").pod<int32_t>(4).pod<uint32_t>(1).str("k").pod<int32_t>(4).pod<uint32_t>(2);
    v.push_back({"gguf_duplicate_key", bytes_file("bad.gguf", f), kInfo, {"{d}/bad.gguf", "offset 41", "duplicate metadata key k"}});
  }
  // Valid GGUF, wrong model.
  v.push_back({"model_shape_contradicts_keys",
               [](const std::string& d) {
                 rewrite_model(d + "/bad.gguf", [](gguf::Writer& w) { w.set("llama.feed_forward_length", gguf::Value::u32(100)); });
               },
               "perplexity -m {d}/bad.gguf -f {txt} -c 32", {"{d}/bad.gguf", "blk.0.ffn_gate.weight", "expected [64, 100]"}});
  v.push_back({"model_missing_tensor",
               [](const std::string& d) {
                 rewrite_model(d + "/bad.gguf", [](gguf::Writer&) {}, [](const gguf::TensorInfo& t) { return t.name != "blk.1.ffn_up.weight"; });
               },
               "imatrix -m {d}/bad.gguf -f {txt} -o {d}/out.gguf -c 32", {"{d}/bad.gguf", "missing tensor blk.1.ffn_up.weight"}});
  // Issue 15 (found by fuzz_gguf, UBSan): a float key read as an integer was cast unchecked.
  v.push_back({"model_key_float_past_int64",
               [](const std::string& d) {
                 rewrite_model(d + "/bad.gguf", [](gguf::Writer& w) { w.set("llama.block_count", gguf::Value::f32(1e31f)); });
               },
               kQuantize, {"{d}/bad.gguf", "llama.block_count", "FLOAT32 1e+31 is not an integer in the int64 range"}});
  v.push_back({"model_key_wrong_type",
               [](const std::string& d) {
                 rewrite_model(d + "/bad.gguf", [](gguf::Writer& w) { w.set("llama.block_count", gguf::Value::str("two")); });
               },
               "perplexity -m {d}/bad.gguf -f {txt} -c 32", {"{d}/bad.gguf", "llama.block_count", "expected an integer"}});
  return v;
}

std::vector<Case> imatrix_cases() {
  std::vector<Case> v;
  const std::string w = "blk.0.attn_q.weight";
  auto ok = entry(w, 64, 32);
  v.push_back({"imatrix_gguf_truncated",
               [](const std::string& d) {
                 const std::string b = read_all(inputs().imatrix);
                 write_file(d + "/bad.gguf", b.substr(0, b.size() - 100));
               },
               kConvertGguf, {"{d}/bad.gguf", "offset |tensor ", kTrunc}});
  v.push_back({"imatrix_gguf_nan", imatrix_file(entry(w, 64, NAN)), kConvertGguf, {"{d}/bad.gguf", w, "value 0 is nan"}});
  v.push_back({"imatrix_gguf_inf_quantize", imatrix_file(entry(w, 64, INFINITY)), kQuantGguf,
               {"{d}/bad.gguf", w, "non-finite value inf at index 0"}});
  v.push_back({"imatrix_gguf_negative_count", imatrix_file(entry(w, 64, 1, -4)), kConvertGguf, {"{d}/bad.gguf", w, "count -4 of slot 0"}});
  v.push_back({"imatrix_gguf_negative_count_quantize", imatrix_file(entry(w, 64, 1, -4)), kQuantGguf,
               {"{d}/bad.gguf", w, "count -4 of slot 0"}});
  v.push_back({"imatrix_gguf_missing_partner", imatrix_file({ok[0]}), kQuantGguf, {"{d}/bad.gguf", w + ".in_sum2", w + ".counts"}});
  {
    auto t = ok;
    t[1].type = kF16;
    v.push_back({"imatrix_gguf_counts_f16", imatrix_file(t), kConvertGguf, {"{d}/bad.gguf", w + ".counts", "expected F32"}});
  }
  v.push_back({"imatrix_gguf_is_a_model", imatrix_file(ok, "model"), kConvertGguf,
               {"{d}/bad.gguf", "general.type", "expected \"imatrix\""}});
  {
    auto t = ok;
    t[0].ne = {63};
    t[1].ne = {2};
    t[1].v = {32, 32};
    v.push_back({"imatrix_gguf_sums_not_multiple_of_counts", imatrix_file(t), kQuantGguf,
                 {"{d}/bad.gguf", w, "63 sums", "2 count"}});
  }
  v.push_back({"imatrix_shape_mismatch_with_model", imatrix_file(entry(w, 32, 32)), kQuantGguf,
               {"{d}/bad.gguf", w, "has 32 values but the tensor needs 64"}});
  v.push_back({"imatrix_from_another_model", imatrix_file(entry("blk.7.attn_q.weight", 4096, 32)), kQuantGguf,
               {"{d}/bad.gguf", "blk.7.attn_q.weight", "names a tensor of", "another model"}});
  v.push_back({"imatrix_continued_from_another_model", imatrix_file(entry(w, 32, 32)),
               "imatrix -m {m} -f {txt} --in-file {d}/bad.gguf -o {d}/out.gguf -c 32 -t 1",
               {"{d}/bad.gguf", w, "32", "64"}});
  v.push_back({"imatrix_merge_shapes_differ", imatrix_file(entry(w, 32, 32)),
               "imatrix merge {im} {d}/bad.gguf -o {d}/out.gguf", {"{d}/bad.gguf", w, "64 values in", "but 32 in"}});
  // Legacy .dat.
  const std::string e64 = dat_entry(w, 1, f32s(64, 1), 64);
  v.push_back({"dat_empty", raw_file("bad.dat", ""), kConvertDat, {"{d}/bad.dat", "empty file", "expected a GGUF or legacy .dat"}});
  v.push_back({"dat_entry_count_negative", raw_file("bad.dat", i32(-3) + e64), kConvertDat,
               {"{d}/bad.dat", "offset 0", "entry count -3 (expected > 0)"}});
  v.push_back({"dat_entry_count_huge", raw_file("bad.dat", i32(1 << 30) + e64), kConvertDat,
               {"{d}/bad.dat", "offset 0", "cannot fit"}});
  v.push_back({"dat_name_length_past_end", raw_file("bad.dat", i32(1) + i32(1 << 20) + w), kConvertDat,
               {"{d}/bad.dat", "offset 4", "name length 1048576 (expected 1..19)"}});
  v.push_back({"dat_value_count_past_end", raw_file("bad.dat", i32(1) + dat_entry(w, 1, f32s(4, 1), 1 << 28)), kConvertDat,
               {"{d}/bad.dat", "offset 31", "value count 268435456 (expected 1..4)"}});
  v.push_back({"dat_nan", raw_file("bad.dat", i32(1) + dat_entry(w, 1, f32s(63, 1) + f32(NAN), 64)), kConvertDat,
               {"{d}/bad.dat", w, "value 63 is nan"}});
  v.push_back({"dat_nan_quantize", raw_file("bad.dat", i32(1) + dat_entry(w, 1, f32s(63, 1) + f32(NAN), 64)), kQuantDat,
               {"{d}/bad.dat", w, "non-finite value nan at index 63"}});
  v.push_back({"dat_truncated_values_quantize", raw_file("bad.dat", i32(1) + dat_entry(w, 1, f32s(10, 1), 64)), kQuantDat,
               {"{d}/bad.dat", "offset ", kTrunc}});
  v.push_back({"dat_negative_ncall_quantize", raw_file("bad.dat", i32(1) + dat_entry(w, -5, f32s(64, 1), 64)), kQuantDat,
               {"{d}/bad.dat", "offset 27", "ncall -5 (expected"}});
  v.push_back({"dat_truncated_trailer", raw_file("bad.dat", i32(1) + e64 + "ab"), kConvertDat, {"{d}/bad.dat", "offset ", kTrunc}});
  v.push_back({"dat_bytes_after_trailer", raw_file("bad.dat", i32(1) + e64 + i32(1) + i32(3) + "abcXY"), kConvertDat,
               {"{d}/bad.dat", "offset ", "2 unexpected bytes after the trailer"}});
  v.push_back({"dat_bytes_after_trailer_quantize", raw_file("bad.dat", i32(1) + e64 + i32(1) + i32(3) + "abcXY"), kQuantDat,
               {"{d}/bad.dat", "offset ", "2 unexpected bytes after the trailer"}});
  v.push_back({"dat_duplicate_name", raw_file("bad.dat", i32(2) + e64 + e64), kConvertDat, {"{d}/bad.dat", "offset 291", "duplicate"}});
  // mistral.rs .cimatrix (detected by its extension).
  const std::string q = "model.layers.0.self_attn.q_proj";
  const std::string c64 = cim_entry(q, f32s(64, 1), 64);
  v.push_back({"cimatrix_entry_count_huge", raw_file("bad.cimatrix", u64(1ull << 62) + c64), kConvertCim,
               {"{d}/bad.cimatrix", "offset 0", "entry count 4611686018427387904"}});
  v.push_back({"cimatrix_key_length_past_end", raw_file("bad.cimatrix", u64(1) + u64(1ull << 40) + q + u64(64) + f32s(64, 1)),
               kConvertCim, {"{d}/bad.cimatrix", "offset 8", "key length 1099511627776"}});
  v.push_back({"cimatrix_unknown_module", raw_file("bad.cimatrix", u64(1) + cim_entry("model.layers.0.mlp.sideways", f32s(64, 1), 64)),
               kConvertCim, {"{d}/bad.cimatrix", "offset 8", "model.layers.0.mlp.sideways names no known weight"}});
  v.push_back({"cimatrix_value_count_past_end", raw_file("bad.cimatrix", u64(1) + cim_entry(q, f32s(8, 1), 1ull << 61)),
               kConvertCim, {"{d}/bad.cimatrix", "offset 47", "value count 2305843009213693952 (expected 1..8)"}});
  v.push_back({"cimatrix_inf", raw_file("bad.cimatrix", u64(1) + cim_entry(q, f32(INFINITY) + f32s(63, 1), 64)), kConvertCim,
               {"{d}/bad.cimatrix", w, "value 0 is inf"}});
  v.push_back({"cimatrix_bytes_after_last_entry", raw_file("bad.cimatrix", u64(1) + c64 + "xyz"), kConvertCim,
               {"{d}/bad.cimatrix", "offset 311", "3 unexpected bytes after the last entry"}});
  v.push_back({"cimatrix_weight_not_in_model",
               raw_file("bad.cimatrix", u64(1) + cim_entry("model.layers.9.self_attn.q_proj", f32s(64, 1), 64)), kConvertCim,
               {"{d}/bad.cimatrix", "blk.9.attn_q.weight", "does not have"}});
  v.push_back({"cimatrix_shape_mismatch_with_model", raw_file("bad.cimatrix", u64(1) + cim_entry(q, f32s(32, 1), 32)), kConvertCim,
               {"{d}/bad.cimatrix", w, "has 32 values", "expects 64"}});
  v.push_back({"cimatrix_experts_without_model",
               raw_file("bad.cimatrix", u64(1) + cim_entry("model.layers.0.block_sparse_moe.experts.w1", f32s(64, 1), 64)),
               "imatrix convert {d}/bad.cimatrix -o {d}/out.gguf", {"{d}/bad.cimatrix", "offset 8", "expert weights need the model"}});
  return v;
}

std::vector<Case> text_and_path_cases() {
  std::vector<Case> v;
  v.push_back({"calibration_empty", raw_file("bad.txt", ""), kCollect, {"{d}/bad.txt", "calibration text", "empty"}});
  v.push_back({"calibration_newline_only", raw_file("bad.txt", "\n"), kCollect, {"{d}/bad.txt", "calibration text", "empty"}});
  v.push_back({"calibration_too_short", raw_file("bad.txt", "the cat sat on the mat\n"), kCollect,
               {"{d}/bad.txt", "tokens", "needs at least 64"}});
  v.push_back({"calibration_missing", [](const std::string&) {}, kCollect, {"{d}/bad.txt", "cannot open the calibration text"}});
  v.push_back({"calibration_is_a_directory", [](const std::string& d) { fs::create_directory(d + "/bad.txt"); }, kCollect,
               {"{d}/bad.txt", "calibration text", "directory"}});
  v.push_back({"perplexity_text_empty", raw_file("bad.txt", ""), "perplexity -m {m} -f {d}/bad.txt -c 32",
               {"{d}/bad.txt", "text file", "empty"}});
  v.push_back({"gptq_calibration_empty", raw_file("bad.txt", ""), "quantize --calibration-file {d}/bad.txt {m} {d}/out.gguf Q4_K_M",
               {"{d}/bad.txt", "calibration text", "empty"}});
  v.push_back({"gptq_calibration_too_short", raw_file("bad.txt", "the cat\n"),
               "quantize --calibration-file {d}/bad.txt --calibration-ctx 32 {m} {d}/out.gguf Q4_K_M",
               {"{d}/bad.txt", "tokens", "fewer than one calibration chunk of 32"}});
  v.push_back({"info_missing_model", [](const std::string&) {}, kInfo, {"{d}/bad.gguf", "cannot open"}});
  v.push_back({"info_model_is_a_directory", [](const std::string& d) { fs::create_directory(d + "/bad.gguf"); }, kInfo,
               {"{d}/bad.gguf", "not a regular file"}});
  v.push_back({"quantize_missing_model", [](const std::string&) {}, kQuantize, {"{d}/bad.gguf", "cannot open"}});
  v.push_back({"quantize_missing_imatrix", [](const std::string&) {}, kQuantGguf, {"{d}/bad.gguf", "cannot open"}});
  v.push_back({"quantize_output_dir_missing", [](const std::string&) {}, "quantize {m} {d}/no/out.gguf Q8_0",
               {"{d}/no/out.gguf", "output directory", "does not exist"}});
  v.push_back({"imatrix_output_dir_missing", [](const std::string&) {},
               "imatrix -m {m} -f {txt} -o {d}/no/out.gguf -c 32 -t 1", {"{d}/no/out.gguf", "output directory", "does not exist"}});
  v.push_back({"imatrix_convert_missing_input", [](const std::string&) {}, kConvertGguf, {"{d}/bad.gguf", "cannot open"}});
  v.push_back({"perplexity_missing_model", [](const std::string&) {}, "perplexity -m {d}/bad.gguf -f {txt}",
               {"{d}/bad.gguf", "cannot open"}});
  return v;
}

std::vector<Case> all_cases() {
  std::vector<Case> v = gguf_model_cases();
  for (auto* part : {&imatrix_cases, &text_and_path_cases})
    for (auto& c : part()) v.push_back(std::move(c));
  return v;
}

std::set<std::string> listing(const fs::path& dir) {
  std::set<std::string> s;
  for (const auto& e : fs::recursive_directory_iterator(dir)) s.insert(e.path().string());
  return s;
}

class Corpus : public ::testing::TestWithParam<Case> {};

TEST_P(Corpus, RejectedWithOneLineAndNoOutput) {
  const Case& c = GetParam();
  TempDir d;
  const std::string dir = d.path().string();
  c.make(dir);
  const auto before = listing(d.path());
  const std::string args = expand(c.args, dir);
  // A hang fails the case (run_imq_child kills it: rc 137) instead of blocking the suite.
  const RunResult r = run_imq_child(split_args(args));
  EXPECT_EQ(r.rc, 1) << args << "\n" << r.err;
  // Progress lines may come first; the error is the one last line.
  const size_t at = r.err.find(": error: ");
  ASSERT_NE(at, std::string::npos) << r.err;
  const size_t start = r.err.rfind('\n', at);
  const std::string line = r.err.substr(start == std::string::npos ? 0 : start + 1);
  EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1) << "one last line: " << r.err;
  for (const auto& want : c.expect) {
    bool found = false;
    const std::string alts = expand(want, dir);
    for (size_t b = 0, e; b <= alts.size() && !found; b = e + 1) {
      e = alts.find('|', b);
      if (e == std::string::npos) e = alts.size();
      found = line.find(alts.substr(b, e - b)) != std::string::npos;
    }
    EXPECT_TRUE(found) << "want '" << alts << "' in: " << line;
  }
  EXPECT_EQ(listing(d.path()), before) << "output or temporary files left behind";
}

INSTANTIATE_TEST_SUITE_P(BadInput, Corpus, ::testing::ValuesIn(all_cases()),
                         [](const auto& info) { return info.param.name; });

TEST(CorpusSize, AtLeastFortyCasesWithFileAndExpectation) {
  const auto cases = all_cases();
  EXPECT_GE(cases.size(), 40u);
  std::set<std::string> names;
  for (const auto& c : cases) {
    EXPECT_TRUE(names.insert(c.name).second) << c.name;
    ASSERT_GE(c.expect.size(), 2u) << c.name;
    EXPECT_TRUE(c.expect[0].starts_with("{d}/")) << c.name << ": the first expectation names the file";
  }
}

}  // namespace
}  // namespace imq::test
