// Model loading and session options behind llama.cpp's common flags: --no-mmap (the file is
// read, not mapped: same weights, same logits) and -ctk/-ctv f32 (keys/values kept in float
// instead of rounded to half).
#include <gtest/gtest.h>

#include <cmath>

#include "imq/gguf.h"
#include "imq/model.h"
#include "synth_util.h"

namespace imq {
namespace {

std::vector<float> logits_of(const model::Model& m, const std::vector<int32_t>& tokens,
                             const model::SessionOptions& so) {
  model::Session s(m, so);
  std::vector<float> out(tokens.size() * size_t(m.config().n_vocab));
  s.decode(tokens, 0, out);
  return out;
}

model::SessionOptions session_options() {
  model::SessionOptions so;
  so.n_ctx = 64, so.n_ubatch = 64, so.n_threads = 2;
  return so;
}

TEST(LoadOptions, NoMmapReadsTheSameModel) {
  test::TempDir d;
  const std::string path = test::write_synth(d, test::synth_f16());
  auto mapped = model::Model::load(path);
  model::LoadOptions lo;
  lo.mmap = false;
  auto read = model::Model::load(path, lo);
  EXPECT_TRUE(mapped->file().mapped());
  EXPECT_FALSE(read->file().mapped());
  const auto tokens = test::random_tokens(20, mapped->config().n_vocab, 3);
  EXPECT_EQ(logits_of(*mapped, tokens, session_options()), logits_of(*read, tokens, session_options()));
}

TEST(LoadOptions, GgufNoMmapKeepsTensorData) {
  test::TempDir d;
  const std::string path = test::write_synth(d, test::synth_dense());
  gguf::OpenOptions oo;
  oo.mmap = false;
  const gguf::File a = gguf::File::open(path), b = gguf::File::open(path, oo);
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  for (const auto& t : a.tensors()) {
    const auto x = a.tensor_data(t), y = b.tensor_data(b.tensor(t.name));
    ASSERT_EQ(x.size(), y.size()) << t.name;
    EXPECT_TRUE(std::equal(x.begin(), x.end(), y.begin())) << t.name;
  }
}

TEST(SessionOptions, F32CacheSkipsTheHalfRoundingOnly) {
  test::TempDir d;
  const std::string path = test::write_synth(d, test::synth_dense());
  auto m = model::Model::load(path);
  const auto tokens = test::random_tokens(24, m->config().n_vocab, 9);
  model::SessionOptions f16 = session_options(), f32 = session_options(), k32 = session_options();
  f32.f16_keys = false, f32.f16_values = false;
  k32.f16_keys = false;
  const auto a = logits_of(*m, tokens, f16), b = logits_of(*m, tokens, f32), c = logits_of(*m, tokens, k32);
  EXPECT_NE(a, b);  // the rounding is gone ...
  EXPECT_NE(b, c);  // ... for keys and values separately
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, double(std::abs(a[i] - b[i])));
  EXPECT_LT(worst, 1e-2);  // ... and it was only a rounding
  // Without ggml rounding the cache is float whatever the types say.
  model::SessionOptions plain = session_options(), plain16 = session_options();
  plain.ggml_rounding = plain16.ggml_rounding = false;
  plain.f16_keys = plain.f16_values = false;
  EXPECT_EQ(logits_of(*m, tokens, plain), logits_of(*m, tokens, plain16));
}

}  // namespace
}  // namespace imq
