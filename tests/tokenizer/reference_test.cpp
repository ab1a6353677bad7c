// Tokenization against llama.cpp's outputs in ../shared: the vocabulary test vectors
// (models/vocab/ggml-vocab-*.gguf.inp/.out), llama-tokenize --ids listings of longer texts for the
// vocab-only files and the reference models, and `imq tokenize` byte for byte.
#include <gtest/gtest.h>

#include <random>
#include <sstream>

#include "imq/gguf.h"
#include "imq/tokenizer.h"
#include "test_util_impl.h"

namespace imq {
namespace {

using test::read_all;

std::unique_ptr<Tokenizer> open_tokenizer(const std::string& path) {
  const gguf::File f = gguf::File::open(path);
  return load_tokenizer(f);
}

// "[1, 2, 3]\n" -> ids
std::vector<int32_t> parse_id_list(const std::string& s) {
  std::vector<int32_t> ids;
  EXPECT_TRUE(s.size() >= 3 && s.front() == '[' && s.substr(s.size() - 2) == "]\n") << "bad listing";
  std::string body = s.substr(1, s.size() - 3);
  for (char& c : body)
    if (c == ',') c = ' ';
  std::istringstream in(body);
  for (int32_t id; in >> id;) ids.push_back(id);
  return ids;
}

// The test texts: each is followed by "\n__ggml_vocab_test__\n".
std::vector<std::string> split_inp(const std::string& s) {
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  size_t start = 0;
  for (size_t pos; (pos = s.find(sep, start)) != std::string::npos; start = pos + sep.size())
    texts.push_back(s.substr(start, pos - start));
  return texts;
}

std::vector<std::vector<int32_t>> split_out(const std::string& s) {
  std::vector<std::vector<int32_t>> rows;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) {
    std::istringstream ls(line);
    rows.emplace_back();
    for (int32_t id; ls >> id;) rows.back().push_back(id);
  }
  return rows;
}

std::string show(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += " " + std::to_string(id);
  return s;
}

class VocabVectors : public testing::TestWithParam<const char*> {};

TEST_P(VocabVectors, EveryTestTextGivesTheExpectedIds) {
  const std::string name = std::string("models/vocab/ggml-vocab-") + GetParam() + ".gguf";
  IMQ_NEED_SHARED(model, name);
  IMQ_NEED_SHARED(inp, name + ".inp");
  IMQ_NEED_SHARED(out, name + ".out");
  const auto tok = open_tokenizer(model);
  const auto texts = split_inp(read_all(inp));
  const auto expected = split_out(read_all(out));
  ASSERT_EQ(texts.size(), 46u);
  ASSERT_EQ(texts.size(), expected.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    // llama.cpp's test-tokenizer-0: no BOS/EOS, special-token text parsed.
    EXPECT_EQ(show(tok->encode(texts[i], false, true)), show(expected[i])) << "text " << i << ": '" << texts[i] << "'";
  }
}

TEST_P(VocabVectors, Wiki100MatchesLlamaTokenize) {
  const std::string v = GetParam();
  IMQ_NEED_SHARED(model, "models/vocab/ggml-vocab-" + v + ".gguf");
  IMQ_NEED_SHARED(text, "data/wiki.test.head100.txt");
  IMQ_NEED_SHARED(ref, "reference/vocab/tokens-ggml-vocab-" + v + "-wiki100.txt");
  const auto tok = open_tokenizer(model);
  const auto ids = tok->encode(read_all(text), tok->add_bos(), true);
  const auto want = parse_id_list(read_all(ref));
  ASSERT_EQ(ids.size(), want.size());
  for (size_t i = 0; i < ids.size(); ++i) ASSERT_EQ(ids[i], want[i]) << "token " << i;
}

INSTANTIATE_TEST_SUITE_P(Vocab, VocabVectors,
                         testing::Values("llama-spm", "gpt-2", "phi-3", "deepseek-llm", "falcon", "starcoder"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& c : s)
                             if (c == '-') c = '_';
                           return s;
                         });

// Random text over a mixed alphabet: the tokens' pieces spell the text again (SPM: after the
// space prefix; byte-level BPE: exactly, for valid UTF-8).
std::string random_text(std::mt19937& rng, bool invalid_bytes) {
  static const std::vector<std::string> kAlphabet = {
      "a", "b", "e", "t", "T", " ", "  ", "\n", "\t", "\r\n", "'s", "1", "23", ".", ",", "!", "\xc3\xa9",
      "\xd0\xb6", "\xe6\x88\x91", "\xe3\x80\x80", "\xf0\x9f\x98\x80", "\xe2\x80\xa8", "the", " of", "<", "s>"};
  std::string s;
  const int n = int(rng() % 40);
  for (int i = 0; i < n; ++i) {
    if (invalid_bytes && rng() % 10 == 0) s += char(0x80 + rng() % 128);
    else s += kAlphabet[rng() % kAlphabet.size()];
  }
  if (invalid_bytes) std::erase(s, ' ');  // a stray lead byte would swallow the bytes of a "\u2581"
  return s;
}

TEST(RoundTrip, PiecesSpellTheText) {
  IMQ_NEED_SHARED(spm_path, "models/vocab/ggml-vocab-llama-spm.gguf");
  IMQ_NEED_SHARED(bpe_path, "models/vocab/ggml-vocab-gpt-2.gguf");
  const auto spm = open_tokenizer(spm_path);
  const auto bpe = open_tokenizer(bpe_path);
  auto spell = [](const Tokenizer& t, const std::string& text) {
    std::string s;
    for (int32_t id : t.encode(text, false, false)) s += t.piece(id);
    return s;
  };
  std::mt19937 rng(42);
  for (int iter = 0; iter < 1000; ++iter) {
    for (bool invalid : {false, true}) {
      const std::string raw = random_text(rng, invalid);
      ASSERT_EQ(spell(*spm, raw), raw.empty() ? raw : " " + raw) << iter;
    }
    const std::string text = random_text(rng, false);
    ASSERT_EQ(spell(*bpe, text), text) << iter;
  }
}

struct ModelText {
  const char* model;
  const char* key;
  const char* data;
};

class ModelTokens : public testing::TestWithParam<ModelText> {};

TEST_P(ModelTokens, MatchLlamaTokenize) {
  const ModelText& p = GetParam();
  const bool arch = std::string_view(p.model).rfind("archs/", 0) == 0;  // BF16 models
  IMQ_NEED_SHARED(model, std::string("models/") + p.model + (arch ? "-bf16.gguf" : "-f32.gguf"));
  IMQ_NEED_SHARED(text, std::string("data/") + p.data);
  IMQ_NEED_SHARED(ref, std::string("reference/") + p.model + "/tokens-" + p.key + ".txt");
  const auto tok = open_tokenizer(model);
  const auto ids = tok->encode(read_all(text), tok->add_bos(), true);
  const auto want = parse_id_list(read_all(ref));
  ASSERT_EQ(ids.size(), want.size());
  for (size_t i = 0; i < ids.size(); ++i) ASSERT_EQ(ids[i], want[i]) << "token " << i;
  // The reference texts hold no special-token text, so parse_special must not matter.
  EXPECT_EQ(tok->encode(read_all(text), tok->add_bos(), false), ids);
}

INSTANTIATE_TEST_SUITE_P(
    Models, ModelTokens,
    testing::Values(ModelText{"stories260K", "wiki100", "wiki.test.head100.txt"},
                    ModelText{"stories260K", "calib200", "calibration_datav3_small.head200.txt"},
                    ModelText{"stories260K", "tinystories", "tinystories-valid-head30k.txt"},
                    ModelText{"dense-spm4k", "wiki100", "wiki.test.head100.txt"},
                    ModelText{"dense-spm4k", "calib200", "calibration_datav3_small.head200.txt"},
                    ModelText{"moe-gpt2bpe", "wiki100", "wiki.test.head100.txt"},
                    ModelText{"moe-gpt2bpe", "calib200", "calibration_datav3_small.head200.txt"},
                    ModelText{"codec256", "wiki100", "wiki.test.head100.txt"},
                    ModelText{"codec256", "calib200", "calibration_datav3_small.head200.txt"},
                    ModelText{"archs/qwen2", "wiki100", "wiki.test.head100.txt"},
                    ModelText{"archs/qwen3", "wiki100", "wiki.test.head100.txt"},
                    ModelText{"archs/qwen3moe", "wiki100", "wiki.test.head100.txt"},
                    ModelText{"archs/gemma3", "wiki100", "wiki.test.head100.txt"}),
    [](const auto& info) { return test::gtest_name(std::string(info.param.model) + "_" + info.param.key); });

// `imq tokenize --ids` prints exactly what llama-tokenize printed.
TEST(TokenizeCli, IdsOutputIsByteIdentical) {
  for (const char* m : {"dense-spm4k", "moe-gpt2bpe"}) {
    IMQ_NEED_SHARED(model, std::string("models/") + m + "-f32.gguf");
    IMQ_NEED_SHARED(text, "data/calibration_datav3_small.head200.txt");
    IMQ_NEED_SHARED(ref, std::string("reference/") + m + "/tokens-calib200.txt");
    const auto r = test::run_imq("tokenize -m " + model + " -f " + text + " --ids --log-disable");
    ASSERT_EQ(r.rc, 0) << r.err;
    EXPECT_EQ(r.out, read_all(ref)) << m;
  }
}

TEST(TokenizeCli, PiecesListing) {
  IMQ_NEED_SHARED(model, "models/stories260K-f32.gguf");
  const auto r = test::run_imq("tokenize -m " + model + " -p 'Once upon a time'");
  ASSERT_EQ(r.rc, 0) << r.err;
  // BOS, then SPM pieces with U+2581 shown as a space.
  const auto tok = open_tokenizer(model);
  const auto ids = tok->encode("Once upon a time", true, true);
  std::string want;
  for (int32_t id : ids) want += fmt::format("{:6d} -> '{}'\n", id, tok->piece(id));
  EXPECT_EQ(r.out, want);
  EXPECT_EQ(r.out.substr(0, 16), "     1 -> '<s>'\n");
  EXPECT_NE(r.out.find(" -> ' upon'\n"), std::string::npos) << r.out;
}

TEST(TokenizeCli, EscapesAndBosOptions) {
  IMQ_NEED_SHARED(model, "models/stories260K-f32.gguf");
  const auto tok = open_tokenizer(model);
  auto ids_of = [](const std::string& out) { return parse_id_list(out); };
  auto r = test::run_imq("tokenize -m " + model + " -p 'a\\nb' --ids");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(ids_of(r.out), tok->encode("a\nb", true, true));
  r = test::run_imq("tokenize -m " + model + " -p 'a\\nb' --ids --no-escape --no-bos");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(ids_of(r.out), tok->encode("a\\nb", false, true));
  r = test::run_imq("tokenize -m " + model + " -p '<s>x' --ids --no-bos");
  EXPECT_EQ(ids_of(r.out).front(), 1);  // control token text parsed by default, as llama-tokenize
  r = test::run_imq("tokenize -m " + model + " -p '<s>x' --ids --no-bos --no-parse-special");
  EXPECT_NE(ids_of(r.out).front(), 1);
}

TEST(TokenizeCli, Errors) {
  auto r = test::run_imq("tokenize -m /nonexistent.gguf -p hi");
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("/nonexistent.gguf"), std::string::npos) << r.err;
  IMQ_NEED_SHARED(model, "models/stories260K-f32.gguf");
  r = test::run_imq("tokenize -m " + model);
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("-p TEXT"), std::string::npos) << r.err;
  r = test::run_imq("tokenize -m " + model + " -f /nonexistent.txt");
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("/nonexistent.txt"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace imq
