// `imq quantize` as a command: bad input gives one line, exit 1 and no file; --dry-run sizes
// equal the real output; tensors whose type does not change are copied byte for byte.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "imq/gguf.h"
#include "reference_cases.h"

namespace imq::test {
namespace {

namespace fs = std::filesystem;

size_t count_lines(const std::string& s) { return size_t(std::count(s.begin(), s.end(), '\n')); }

size_t files_in(const fs::path& dir) {
  size_t n = 0;
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator(); ++it)
    n += it->is_regular_file();
  return n;
}

// A failed run: exit 1, nothing on stdout, exactly one line on stderr containing `needle`.
void expect_one_line_error(const RunResult& r, const std::string& needle) {
  EXPECT_EQ(r.rc, 1) << r.out << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(count_lines(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
}

uint64_t dry_run_size(const std::string& out) {
  const std::string key = "output file size = ";
  auto p = out.find(key);
  if (p == std::string::npos) return 0;
  return std::stoull(out.substr(p + key.size()));
}

TEST(QuantizeCli, UnknownTypeListsValidTypes) {
  IMQ_NEED_SHARED(model, "models/codec256-f32.gguf");
  TempDir d;
  RunResult r = run_imq("quantize " + model + " " + d.file("o.gguf") + " Q4_K_X");
  expect_one_line_error(r, "Q4_K_X");
  for (const char* t : {"Q4_0", "Q2_K", "Q3_K_M", "Q4_K_M", "Q6_K", "IQ4_XS", "Q8_0", "F16", "BF16", "F32"})
    EXPECT_NE(r.err.find(t), std::string::npos) << t;
  EXPECT_EQ(files_in(d.path()), 0u);
  // Two arguments: the second is neither a type nor followed by one.
  expect_one_line_error(run_imq("quantize " + model + " nonsense"), "TYPE");
}

TEST(QuantizeCli, QuantizedInputNeedsAllowRequantize) {
  IMQ_NEED_SHARED(model, "reference/dense-spm4k/q-Q4_K_M-noimat.gguf");
  TempDir d;
  expect_one_line_error(run_imq("quantize " + model + " " + d.file("o.gguf") + " Q8_0"),
                        "--allow-requantize");
  EXPECT_EQ(files_in(d.path()), 0u);
}

TEST(QuantizeCli, ImatrixOfAnotherModelWithOtherSizes) {
  IMQ_NEED_SHARED(model, "models/dense-spm4k-f32.gguf");
  IMQ_NEED_SHARED(imat, "reference/stories260K/imatrix-calib-c128.gguf");
  TempDir d;
  RunResult r = run_imq("quantize --imatrix " + imat + " " + model + " " + d.file("o.gguf") + " Q4_K_M");
  expect_one_line_error(r, "blk.0.attn_k.weight");
  EXPECT_NE(r.err.find("another model"), std::string::npos);
  EXPECT_EQ(files_in(d.path()), 0u);
}

TEST(QuantizeCli, ImatrixWithNoMatchingNames) {
  IMQ_NEED_SHARED(model, "models/codec256-f32.gguf");
  TempDir d;
  {  // legacy .dat with one entry of another model: n, {len, name, ncall, nval, values}
    std::ofstream f(d.file("other.dat"), std::ios::binary);
    auto put = [&](const void* p, size_t n) { f.write(static_cast<const char*>(p), std::streamsize(n)); };
    const int32_t n = 1, ncall = 1, nval = 4;
    const std::string name = "model.layers.0.mlp.down_proj";
    const int32_t len = int32_t(name.size());
    const float v[4] = {1, 2, 3, 4};
    put(&n, 4); put(&len, 4); put(name.data(), name.size()); put(&ncall, 4); put(&nval, 4); put(v, 16);
  }
  RunResult r = run_imq("quantize --imatrix " + d.file("other.dat") + " " + model + " " + d.file("o.gguf") + " Q4_K_M");
  expect_one_line_error(r, "model.layers.0.mlp.down_proj");
  EXPECT_FALSE(fs::exists(d.file("o.gguf")));
  EXPECT_EQ(files_in(d.path()), 1u);
}

TEST(QuantizeCli, OutputEqualsInputIsRefused) {
  IMQ_NEED_SHARED(model, "models/codec256-f32.gguf");
  TempDir d;
  fs::copy_file(model, d.file("m.gguf"));
  const std::string before = read_all(d.file("m.gguf"));
  expect_one_line_error(run_imq("quantize " + d.file("m.gguf") + " " + d.file("m.gguf") + " Q8_0"), "input");
  // The same file under another spelling.
  expect_one_line_error(run_imq("quantize " + d.file("m.gguf") + " " + (d.path() / "." / "m.gguf").string() + " Q8_0"),
                        "input");
  EXPECT_TRUE(read_all(d.file("m.gguf")) == before);
  EXPECT_EQ(files_in(d.path()), 1u);
}

TEST(QuantizeCli, MissingOutputDirectory) {
  IMQ_NEED_SHARED(model, "models/codec256-f32.gguf");
  TempDir d;
  expect_one_line_error(run_imq("quantize " + model + " " + d.file("no/such/dir/o.gguf") + " Q8_0"),
                        "does not exist");
  EXPECT_EQ(files_in(d.path()), 0u);
}

TEST(QuantizeCli, IncludeAndExcludeTogetherIsAUsageError) {
  IMQ_NEED_SHARED(model, "models/codec256-f32.gguf");
  IMQ_NEED_SHARED(imat, "reference/codec256/imatrix-calib-c128.gguf");
  TempDir d;
  expect_one_line_error(run_imq("quantize --imatrix " + imat + " --include-weights attn --exclude-weights ffn " +
                                model + " " + d.file("o.gguf") + " Q4_K_M"),
                        "--exclude-weights");
  EXPECT_EQ(files_in(d.path()), 0u);
}

// llama-quantize's order: the repeatable name filters before the positionals, each taking one
// value (they used to swallow the positionals).
TEST(QuantizeCli, NameFiltersBeforePositionals) {
  IMQ_NEED_SHARED(model, "models/stories260K-f32.gguf");
  IMQ_NEED_SHARED(imat, "reference/stories260K/imatrix-calib-c128.gguf");
  TempDir d;
  auto loaded = [&](const std::string& filters) {
    const RunResult r = run_imq("quantize --dry-run --imatrix " + imat + " " + filters + " " + model + " " +
                                d.file("o.gguf") + " Q4_K_M");
    EXPECT_EQ(r.rc, 0) << r.err;
    const auto at = r.out.find("loaded ");
    return at == std::string::npos ? -1 : std::atoi(r.out.c_str() + at + 7);
  };
  EXPECT_EQ(loaded(""), 35);  // 5 layers x 7 weights
  EXPECT_EQ(loaded("--include-weights attn --include-weights ffn_up"), 25);
  EXPECT_EQ(loaded("--exclude-weights attn"), 15);
  EXPECT_EQ(files_in(d.path()), 0u);
}

TEST(QuantizeCli, Q2KSNeedsAnImatrix) {
  IMQ_NEED_SHARED(model, "models/codec256-f32.gguf");
  TempDir d;
  expect_one_line_error(run_imq("quantize " + model + " " + d.file("o.gguf") + " Q2_K_S"), "blk.0.attn_k.weight");
  EXPECT_EQ(files_in(d.path()), 0u);
  // --dry-run only warns, as llama-quantize does.
  RunResult dry = run_imq("quantize --dry-run " + model + " " + d.file("o.gguf") + " Q2_K_S");
  EXPECT_EQ(dry.rc, 0) << dry.err;
  EXPECT_NE(dry.err.find("needs an importance matrix"), std::string::npos) << dry.err;
}

// A write that fails part way (file size limit standing in for a full disk) leaves nothing.
TEST(QuantizeCli, FailedWriteLeavesNoFile) {
  IMQ_NEED_SHARED(model, "reference/moe-gpt2bpe/q-Q4_K_M-noimat.gguf");
  TempDir d;
  const std::string out = d.file("o.gguf");
  // ulimit -f counts KiB; an ignored SIGXFSZ makes write() fail with EFBIG instead.
  const std::string cmd = "ulimit -f 1024; trap '' XFSZ; " + std::string(IMQ_BINARY) +
                          " quantize --allow-requantize " + model + " " + out + " Q4_K_M >" +
                          d.file("log") + " 2>&1";
  const int st = std::system(("bash -c \"" + cmd + "\"").c_str());
  EXPECT_NE(st, 0);
  EXPECT_FALSE(fs::exists(out));
  EXPECT_EQ(files_in(d.path()), 1u) << read_all(d.file("log"));  // only the log
  EXPECT_NE(read_all(d.file("log")).find("write failed"), std::string::npos) << read_all(d.file("log"));
}

TEST(QuantizeCli, NamesNumbersAndDefaultOutputName) {
  IMQ_NEED_SHARED(model, "models/dense-spm4k-f32.gguf");
  RunResult by_name = run_imq("quantize --dry-run " + model + " q4_k_m");
  RunResult by_id = run_imq("quantize --dry-run " + model + " 15 2");
  RunResult alias = run_imq("quantize --dry-run " + model + " Q4_K");
  ASSERT_EQ(by_name.rc, 0) << by_name.err;
  ASSERT_EQ(by_id.rc, 0) << by_id.err;
  ASSERT_EQ(alias.rc, 0) << alias.err;
  const std::string dir = fs::path(model).parent_path().string() + "/";
  EXPECT_NE(by_name.out.find("to '" + dir + "ggml-model-Q4_K_M.gguf'"), std::string::npos) << by_name.out;
  // llama-quantize names a numeric 15 after the first list entry with that id, the alias.
  EXPECT_NE(by_id.out.find("ggml-model-Q4_K.gguf"), std::string::npos) << by_id.out;
  auto body = [](const std::string& s) { return s.substr(s.find('\n')); };
  EXPECT_EQ(body(by_name.out), body(by_id.out));
  EXPECT_EQ(body(by_name.out), body(alias.out));
  EXPECT_NE(by_name.out.find("blk.3.ffn_down.weight"), std::string::npos);
}

// Requantizing a Q4_K_M file as Q4_K_M changes no tensor type: every tensor is copied
// unchanged (no codec runs), and --dry-run predicts the exact size.
TEST(QuantizeCli, SameTypeIsCopiedUnchanged) {
  IMQ_NEED_SHARED(model, "reference/moe-gpt2bpe/q-Q4_K_M-noimat.gguf");
  TempDir d;
  const std::string out = d.file("o.gguf");
  RunResult dry = run_imq("quantize --dry-run --allow-requantize " + model + " " + out + " Q4_K_M");
  ASSERT_EQ(dry.rc, 0) << dry.err;
  EXPECT_FALSE(fs::exists(out));
  RunResult r = run_imq("quantize --allow-requantize " + model + " " + out + " Q4_K_M 2");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(dry_run_size(dry.out), fs::file_size(out));
  gguf::File in = gguf::File::open(model), o = gguf::File::open(out);
  ASSERT_EQ(in.tensors().size(), o.tensors().size());
  for (const auto& t : in.tensors()) {
    const gguf::TensorInfo& u = o.tensor(t.name);
    EXPECT_EQ(t.type, u.type) << t.name;
    auto a = in.tensor_data(t), b = o.tensor_data(u);
    EXPECT_TRUE(a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size()) == 0) << t.name;
  }
  EXPECT_EQ(o.get_int("general.file_type"), 15);
  EXPECT_EQ(o.kvs().back().key, "general.file_type");  // removed and re-appended
}

// Needs the codecs: the dry run's size is the real file's size.
TEST(QuantizeCli, DryRunSizeEqualsRealSize) {
  IMQ_NEED_SHARED(model, "models/moe-gpt2bpe-f32.gguf");
  IMQ_NEED_SHARED(imat, "reference/moe-gpt2bpe/imatrix-calib-c256.gguf");
  TempDir d;
  const std::string out = d.file("o.gguf");
  const std::string args = "--imatrix " + imat + " " + model + " " + out + " Q3_K_M 2";
  RunResult dry = run_imq("quantize --dry-run " + args);
  ASSERT_EQ(dry.rc, 0) << dry.err;
  EXPECT_FALSE(fs::exists(out));
  RunResult r = run_imq("quantize " + args);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(dry_run_size(dry.out), fs::file_size(out));
  EXPECT_NE(r.out.find("converting to q5_K"), std::string::npos);
}

}  // namespace
}  // namespace imq::test

namespace imq::test {
namespace {

// Progress with ETA goes to stderr only when it is a terminal (run under `script` for a pty).
TEST(QuantizeCli, ProgressOnlyOnATerminal) {
  IMQ_NEED_SHARED(model, "models/dense-spm4k-f16.gguf");
  if (std::system("command -v script >/dev/null 2>&1") != 0) GTEST_SKIP() << "no `script` for a pty";
  TempDir d;
  RunResult plain = run_imq("quantize " + model + " " + d.file("a.gguf") + " Q8_0 2");
  ASSERT_EQ(plain.rc, 0) << plain.err;
  EXPECT_EQ(plain.err.find("ETA"), std::string::npos) << plain.err;
  const std::string cmd = std::string(IMQ_BINARY) + " quantize " + model + " " + d.file("b.gguf") + " Q8_0 2";
  const int st = std::system(("script -qec '" + cmd + "' /dev/null >" + d.file("tty.log") + " 2>&1").c_str());
  ASSERT_EQ(st, 0) << read_all(d.file("tty.log"));
  EXPECT_NE(read_all(d.file("tty.log")).find("ETA"), std::string::npos) << read_all(d.file("tty.log"));
  EXPECT_TRUE(read_all(d.file("a.gguf")) == read_all(d.file("b.gguf")));
}

}  // namespace
}  // namespace imq::test
