// The tokenizer algorithms on small hand-made vocabularies: SPM merge order and byte fallback,
// BPE merge ranks, special-token splitting, pre-tokenizer regex semantics, GGUF loading errors.
#include <gtest/gtest.h>

#include <set>

#include "imq/error.h"
#include "imq/gguf.h"
#include "model/tokenizer/encoders.h"
#include "model/tokenizer/pretokenizer.h"
#include "model/tokenizer/tokenizer_impl.h"
#include "model/tokenizer/unicode.h"
#include "model/tokenizer/vocab.h"
#include "test_util.h"

namespace imq::tok {
namespace {

const std::string kSp = "\xe2\x96\x81";  // U+2581, SentencePiece's space

struct Tok {
  std::string text;
  float score = 0;
  TokenType type = TokenType::NORMAL;
};

// <unk> <s> </s>, the 256 byte tokens, then `extra` (ids from 259).
Vocab spm_vocab(const std::vector<Tok>& extra) {
  Vocab v;
  v.type = VocabType::SPM;
  auto add = [&](const std::string& t, float s, TokenType ty) {
    v.tokens.push_back(t);
    v.scores.push_back(s);
    v.attrs.push_back(attr_of_type(int32_t(ty)));
  };
  add("<unk>", 0, TokenType::UNKNOWN);
  add("<s>", 0, TokenType::CONTROL);
  add("</s>", 0, TokenType::CONTROL);
  for (int b = 0; b < 256; ++b) add(fmt::format("<0x{:02X}>", b), 0, TokenType::BYTE);
  for (const Tok& t : extra) add(t.text, t.score, t.type);
  v.bos = 1;
  v.eos = 2;
  v.unk = 0;
  v.add_bos = true;
  finalize_vocab(v);
  return v;
}

int32_t id_of(const Vocab& v, const std::string& t) {
  const int32_t id = v.find(t);
  EXPECT_NE(id, Vocab::kNone) << t;
  return id;
}

std::vector<int32_t> spm(const Vocab& v, const std::string& escaped) {
  std::vector<int32_t> out;
  spm_encode(v, escaped, out);
  return out;
}

TEST(Spm, HighestScoreMergesFirst) {
  // "abc": ab (score 1) vs bc (score 2): bc wins, then "a"+"bc" is no token.
  Vocab v = spm_vocab({{"a", -1}, {"b", -1}, {"c", -1}, {"ab", 1}, {"bc", 2}});
  EXPECT_EQ(spm(v, "abc"), (std::vector<int32_t>{id_of(v, "a"), id_of(v, "bc")}));
  v = spm_vocab({{"a", -1}, {"b", -1}, {"c", -1}, {"ab", 3}, {"bc", 2}});
  EXPECT_EQ(spm(v, "abc"), (std::vector<int32_t>{id_of(v, "ab"), id_of(v, "c")}));
  // Merged pieces keep merging: ab + c -> abc.
  v = spm_vocab({{"a", -1}, {"b", -1}, {"c", -1}, {"ab", 3}, {"bc", 2}, {"abc", -5}});
  EXPECT_EQ(spm(v, "abc"), (std::vector<int32_t>{id_of(v, "abc")}));
}

TEST(Spm, EqualScoresMergeLeftmostFirst) {
  Vocab v = spm_vocab({{"a", -1}, {"aa", 1}});
  EXPECT_EQ(spm(v, "aaa"), (std::vector<int32_t>{id_of(v, "aa"), id_of(v, "a")}));
  EXPECT_EQ(spm(v, "aaaa"), (std::vector<int32_t>{id_of(v, "aa"), id_of(v, "aa")}));
}

TEST(Spm, UnknownCharactersFallBackToByteTokens) {
  Vocab v = spm_vocab({{"a", -1}});
  // U+00E9 is no token: its two UTF-8 bytes become <0xC3> <0xA9> (ids 3 + byte).
  EXPECT_EQ(spm(v, "a\xc3\xa9"), (std::vector<int32_t>{id_of(v, "a"), 3 + 0xC3, 3 + 0xA9}));
  // A truncated sequence at the end is one symbol; its bytes fall back too.
  EXPECT_EQ(spm(v, "a\xe2\x96"), (std::vector<int32_t>{id_of(v, "a"), 3 + 0xE2, 3 + 0x96}));
}

TEST(Spm, NewlineCutsDoNotChangeTheResult) {
  // "\n" is in no multi-byte token here, so the text is processed in runs; a token that contains
  // "\n" disables the cut.
  Vocab v = spm_vocab({{"a", -1}, {"b", -1}, {"ab", 1}});
  EXPECT_TRUE(v.isolated_ascii['\n']);
  EXPECT_EQ(spm(v, "ab\nab"), (std::vector<int32_t>{id_of(v, "ab"), 3 + '\n', id_of(v, "ab")}));
  Vocab w = spm_vocab({{"a", -1}, {"b", -1}, {"ab", 1}, {"b\n", 4}, {"b\na", 5}});
  EXPECT_FALSE(w.isolated_ascii['\n']);
  EXPECT_EQ(spm(w, "ab\nab"), (std::vector<int32_t>{id_of(w, "a"), id_of(w, "b\na"), id_of(w, "b")}));
}

TEST(SpmTokenizer, SpacePrefixBosAndEscaping) {
  VocabTokenizer t(spm_vocab({{kSp, -1}, {"a", -1}, {"b", -1}, {kSp + "a", 2}, {kSp + "b", 2}}));
  const Vocab& v = t.vocab();
  const int32_t sa = id_of(v, kSp + "a"), sb = id_of(v, kSp + "b");
  EXPECT_EQ(t.encode("a b", true, false), (std::vector<int32_t>{1, sa, sb}));
  EXPECT_EQ(t.encode("a b", false, false), (std::vector<int32_t>{sa, sb}));
  EXPECT_EQ(t.encode("", true, false), (std::vector<int32_t>{1}));
  EXPECT_EQ(t.encode("", false, false), (std::vector<int32_t>{}));
  // After a special token the next fragment gets the space prefix again.
  EXPECT_EQ(t.encode("a</s>b", false, true), (std::vector<int32_t>{sa, 2, sb}));
  // Without parse_special the control token's text is plain text (bytes here).
  const auto plain = t.encode("</s>", false, false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 2), 0);
  EXPECT_EQ(t.piece(sa), " a");
  EXPECT_EQ(t.piece(3 + 0x0A), "\n");
  EXPECT_EQ(t.piece(1), "<s>");
  EXPECT_TRUE(t.is_eog(2));
  EXPECT_FALSE(t.is_eog(1));
  EXPECT_THROW(t.piece(v.n_tokens()), Error);
}

TEST(Special, UserDefinedAlwaysControlOnlyWhenParsing) {
  Vocab v = spm_vocab({{"<u>", 0, TokenType::USER_DEFINED}, {"<c>", 0, TokenType::CONTROL}});
  const int32_t u = id_of(v, "<u>"), c = id_of(v, "<c>");
  auto frags = split_special(v, "x<u>y<c>z", false);
  ASSERT_EQ(frags.size(), 3u);
  EXPECT_EQ(frags[1].token, u);
  EXPECT_EQ(frags[2].offset, 4u);
  EXPECT_EQ(frags[2].length, 5u);  // "y<c>z" stays text
  frags = split_special(v, "x<u>y<c>z", true);
  ASSERT_EQ(frags.size(), 5u);
  EXPECT_EQ(frags[3].token, c);
  // Adjacent and repeated occurrences, nothing in between.
  frags = split_special(v, "<u><u>", false);
  ASSERT_EQ(frags.size(), 2u);
  EXPECT_EQ(frags[0].token, u);
  EXPECT_EQ(frags[1].token, u);
}

TEST(Special, LongerTokensFirstAndStripping) {
  Vocab v = spm_vocab({{"<a>", 0, TokenType::USER_DEFINED}, {"<a><b>", 0, TokenType::USER_DEFINED}});
  auto frags = split_special(v, "<a><b><a>", false);
  ASSERT_EQ(frags.size(), 2u);
  EXPECT_EQ(frags[0].token, id_of(v, "<a><b>"));
  EXPECT_EQ(frags[1].token, id_of(v, "<a>"));
  // rstrip/lstrip swallow the white space next to the token.
  v.attrs[size_t(id_of(v, "<a>"))] |= kAttrRstrip | kAttrLstrip;
  frags = split_special(v, "x \t<a> \n y", false);
  ASSERT_EQ(frags.size(), 3u);
  EXPECT_EQ(frags[0].length, 1u);  // "x"
  EXPECT_EQ(frags[2].offset, 9u);  // "y"
  EXPECT_EQ(frags[2].length, 1u);
}

TEST(Special, Phi3ModelNameSetsRstrip) {
  Vocab v;
  v.tokens = {"<unk>", "<s>", "</s>", "<|end|>", "a"};
  v.attrs = {kAttrUnknown, kAttrControl, kAttrUserDefined, kAttrControl, kAttrNormal};
  v.model_name = "Phi3";
  finalize_vocab(v);
  EXPECT_TRUE(v.attrs[2] & kAttrRstrip);
  EXPECT_TRUE(v.attrs[3] & kAttrRstrip);
  EXPECT_FALSE(v.attrs[0] & kAttrRstrip);
  EXPECT_FALSE(v.attrs[1] & kAttrRstrip);
  EXPECT_TRUE(v.eog.count(3));  // "<|end|>" ends generation
}

TEST(Special, EndOfTurnTextBecomesControl) {
  Vocab v;
  v.tokens = {"a", "<|im_end|>", "<|eom_id|>"};
  v.attrs = {kAttrNormal, kAttrUserDefined, kAttrNormal};
  finalize_vocab(v);
  EXPECT_EQ(v.attrs[1], kAttrControl);
  EXPECT_EQ(v.attrs[2], kAttrControl);
  EXPECT_EQ(v.eot, 1);
  EXPECT_EQ(v.eom, 2);
  EXPECT_EQ(v.eog, (std::unordered_set<int32_t>{1, 2}));
}

// A byte-level BPE vocabulary over the characters of `chars` plus merge results.
Vocab bpe_vocab(const std::string& chars, const std::vector<std::string>& merges, const std::string& pre = "gpt-2") {
  Vocab v;
  v.type = VocabType::BPE;
  v.pre = pre;
  for (char c : chars) v.tokens.push_back(gpt2_encode(std::string(1, c)));
  for (const std::string& m : merges) {
    v.merges.push_back(m);
    std::string joined = m;
    joined.erase(joined.find(' '), 1);
    v.tokens.push_back(joined);
  }
  v.tokens.push_back("<|endoftext|>");
  v.attrs.assign(v.tokens.size(), kAttrNormal);
  v.attrs.back() = kAttrControl;
  v.bos = v.eos = int32_t(v.tokens.size()) - 1;
  finalize_vocab(v);
  return v;
}

std::vector<int32_t> bpe(const Vocab& v, const std::string& word) {
  std::vector<int32_t> out;
  bpe_encode_word(v, gpt2_encode(word), out);
  return out;
}

TEST(Bpe, LowestRankMergesFirst) {
  Vocab v = bpe_vocab("abc", {"b c", "a b"});
  EXPECT_EQ(bpe(v, "abc"), (std::vector<int32_t>{id_of(v, "a"), id_of(v, "bc")}));
  v = bpe_vocab("abc", {"a b", "b c", "ab c"});
  EXPECT_EQ(bpe(v, "abc"), (std::vector<int32_t>{id_of(v, "abc")}));
  // Equal pairs: leftmost first.
  v = bpe_vocab("a", {"a a"});
  EXPECT_EQ(bpe(v, "aaa"), (std::vector<int32_t>{id_of(v, "aa"), id_of(v, "a")}));
}

TEST(Bpe, SpaceIsByteEncodedAndUnknownBytesAreDropped) {
  Vocab v = bpe_vocab(" a", {"\xc4\xa0 a"});  // "Ġ a"
  EXPECT_EQ(bpe(v, " a"), (std::vector<int32_t>{id_of(v, "\xc4\xa0" "a")}));
  EXPECT_EQ(bpe(v, "a\xc3\xa9"), (std::vector<int32_t>{id_of(v, "a")}));  // no tokens for é's bytes
}

TEST(Bpe, IgnoreMergesTakesWholeTokens) {
  Vocab v = bpe_vocab("abc", {"a b", "b c"});
  v.tokens.push_back("abc");
  v.scores.push_back(0);
  v.attrs.push_back(kAttrNormal);
  finalize_vocab(v);
  EXPECT_EQ(bpe(v, "abc"), (std::vector<int32_t>{id_of(v, "ab"), id_of(v, "c")}));
  v.ignore_merges = true;
  EXPECT_EQ(bpe(v, "abc"), (std::vector<int32_t>{id_of(v, "abc")}));
}

TEST(BpeTokenizer, EncodeAndPieces) {
  VocabTokenizer t(bpe_vocab(" ab\n", {"\xc4\xa0 a", "\xc4\xa0" "a b"}));
  const Vocab& v = t.vocab();
  const int32_t sab = id_of(v, "\xc4\xa0" "ab");
  EXPECT_FALSE(t.add_bos());
  EXPECT_EQ(t.encode(" ab ab", true, false), (std::vector<int32_t>{sab, sab}));
  EXPECT_EQ(t.encode("<|endoftext|> ab", false, true), (std::vector<int32_t>{t.eos(), sab}));
  EXPECT_EQ(t.piece(sab), " ab");
  EXPECT_EQ(t.piece(id_of(v, "\xc4\x8a")), "\n");  // "Ċ"
  EXPECT_EQ(t.piece(t.eos()), "<|endoftext|>");
  EXPECT_TRUE(t.is_eog(t.eos()));
}

std::vector<std::string> split(const std::vector<std::string>& regexes, const std::string& text) {
  return PreTokenizer(regexes).split(text);
}

using Pieces = std::vector<std::string>;

TEST(PreTokenizer, Gpt2Pieces) {
  const auto re = pre_tokenizer_spec("gpt-2").regexes;
  EXPECT_EQ(split(re, "Hello  world\n\n x's 123"),
            (Pieces{"Hello", " ", " world", "\n\n", " x", "'s", " 123"}));
  EXPECT_EQ(split(re, "a\tb  "), (Pieces{"a", "\t", "b", "  "}));
  // Non-ASCII letters and numbers are categories, not bytes.
  EXPECT_EQ(split(re, "caf\xc3\xa9 \xd9\xa3!"), (Pieces{"caf\xc3\xa9", " \xd9\xa3", "!"}));
}

TEST(PreTokenizer, Llama3Pieces) {
  const auto re = pre_tokenizer_spec("llama-bpe").regexes;
  EXPECT_EQ(split(re, "I'M 12345 ok?!\n\nx"), (Pieces{"I", "'M", " ", "123", "45", " ok", "?!\n\n", "x"}));
  EXPECT_TRUE(pre_tokenizer_spec("llama3").ignore_merges);
  EXPECT_THROW(pre_tokenizer_spec("no-such-pre"), Error);
}

TEST(PreTokenizer, RegexesApplyInSequence) {
  // Falcon: punctuation runs first, then GPT-2 inside the rest, then digit triples.
  const auto re = pre_tokenizer_spec("falcon").regexes;
  EXPECT_EQ(split(re, "x=1234567"), (Pieces{"x", "=", "123", "456", "7"}));
}

TEST(PreTokenizer, DollarMatchesOnlyAtTheEnd) {
  EXPECT_EQ(split({"a$"}, "a\n"), (Pieces{"a\n"}));  // PCRE's default would stop before "\n"
  EXPECT_EQ(split({"a$"}, "ba"), (Pieces{"b", "a"}));
}

TEST(PreTokenizer, WhiteSpaceIsUnicodeWhiteSpace) {
  // U+180E is no longer white space (PCRE2's UCP \s still has it).
  EXPECT_EQ(split({R"(\s\p{L})"}, "x\xe1\xa0\x8ey"), (Pieces{"x\xe1\xa0\x8ey"}));
  EXPECT_EQ(split({R"(\s\p{L})"}, "x\xe3\x80\x80y"), (Pieces{"x", "\xe3\x80\x80y"}));  // U+3000
  // Without categories, non-ASCII white space is seen as U+000B: \s matches it, a class
  // naming it literally does not.
  EXPECT_EQ(split({"\\s"}, "x\xe3\x80\x80y"), (Pieces{"x", "\xe3\x80\x80", "y"}));
  EXPECT_EQ(split({"[\\x{3000}]"}, "x\xe3\x80\x80y"), (Pieces{"x\xe3\x80\x80y"}));
}

TEST(PreTokenizer, InvalidUtf8BecomesReplacementCharacter) {
  EXPECT_EQ(split(pre_tokenizer_spec("gpt-2").regexes, "a\xff" "b"), (Pieces{"a", "\xef\xbf\xbd", "b"}));
}

TEST(PreTokenizer, CodePointsPastUnicodeMatchAsUnassigned) {
  // F7 BF BF BF decodes to U+1FFFFF (llama.cpp's decoder lets it through): it must not reach
  // PCRE2's Unicode tables (found by review while fuzzing, issue 15). It splits like an
  // unassigned code point (U+40000, F1 80 80 80) and its words keep the text's own bytes.
  const auto re = pre_tokenizer_spec("gpt-2").regexes;
  EXPECT_EQ(split(re, "ab\xf7\xbf\xbf\xbf cd \xf4\x90\x80\x80"),
            (Pieces{"ab", "\xf7\xbf\xbf\xbf", " cd", " \xf4\x90\x80\x80"}));
  EXPECT_EQ(split(re, "ab\xf1\x80\x80\x80 cd \xf1\x80\x80\x80"),
            (Pieces{"ab", "\xf1\x80\x80\x80", " cd", " \xf1\x80\x80\x80"}));
  const auto llama3 = pre_tokenizer_spec("llama-bpe").regexes;
  EXPECT_EQ(split(llama3, "x\xf7\xbf\xbf\xbfy"), (Pieces{"x", "\xf7\xbf\xbf\xbfy"}));
}

TEST(Unicode, DecodeAndGpt2Alphabet) {
  EXPECT_EQ(utf8_decode("a\xc3\xa9\xf0\x9f\x98\x80"), (std::vector<uint32_t>{'a', 0xE9, 0x1F600}));
  EXPECT_EQ(utf8_decode("\xc3\x28\xe2\x82"), (std::vector<uint32_t>{0xFFFD, '(', 0xFFFD, 0xFFFD}));
  std::set<uint32_t> seen;
  for (int b = 0; b < 256; ++b) {
    const uint32_t c = byte_to_gpt2_cpt(uint8_t(b));
    seen.insert(c);
    EXPECT_EQ(gpt2_cpt_to_byte(c), b);
  }
  EXPECT_EQ(seen.size(), 256u);
  EXPECT_EQ(byte_to_gpt2_cpt(' '), 0x120u);
  EXPECT_EQ(byte_to_gpt2_cpt('\n'), 0x10Au);
  EXPECT_EQ(gpt2_cpt_to_byte(0x20), -1);
  EXPECT_TRUE(is_whitespace(0x3000));
  EXPECT_FALSE(is_whitespace(0x180E));
}

// GGUF files with broken tokenizer metadata are rejected with the file and key named.
class LoadErrors : public testing::Test {
 protected:
  test::TempDir dir;
  std::string expect_error(const gguf::Writer& w) {
    const std::string path = dir.file("v.gguf");
    w.write(path);
    const gguf::File f = gguf::File::open(path);
    try {
      load_tokenizer(f);
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(path), std::string::npos) << msg;
      return msg;
    }
    ADD_FAILURE() << "no error";
    return {};
  }
  static gguf::Writer base(const std::string& model) {
    gguf::Writer w;
    w.set("tokenizer.ggml.model", gguf::Value::str(model));
    w.set("tokenizer.ggml.tokens", gguf::Value::string_array({"a", "b", "ab"}));
    return w;
  }
};

TEST_F(LoadErrors, NamesTheProblem) {
  EXPECT_NE(expect_error(base("bert")).find("'bert' is not supported"), std::string::npos);
  gguf::Writer w = base("llama");
  w.set("tokenizer.ggml.scores", gguf::Value::array(gguf::ValueType::FLOAT32, {gguf::Value::f32(0)}));
  EXPECT_NE(expect_error(w).find("tokenizer.ggml.scores has 1 entries, expected 3"), std::string::npos);
  w = base("gpt2");
  EXPECT_NE(expect_error(w).find("tokenizer.ggml.merges"), std::string::npos);
  w.set("tokenizer.ggml.merges", gguf::Value::string_array({"a b"}));
  w.set("tokenizer.ggml.pre", gguf::Value::str("martian"));
  EXPECT_NE(expect_error(w).find("unknown pre-tokenizer type 'martian'"), std::string::npos);
  w = base("llama");
  w.remove("tokenizer.ggml.tokens");
  EXPECT_NE(expect_error(w).find("tokenizer.ggml.tokens"), std::string::npos);
}

TEST_F(LoadErrors, DefaultsOfAMinimalBpeFile) {
  gguf::Writer w = base("gpt2");
  w.set("tokenizer.ggml.merges", gguf::Value::string_array({"a b"}));
  const std::string path = dir.file("ok.gguf");
  w.write(path);
  const gguf::File f = gguf::File::open(path);
  const auto t = load_tokenizer(f);
  EXPECT_FALSE(t->add_bos());
  EXPECT_EQ(t->bos(), -1);  // llama.cpp's default 11 lies outside this vocabulary
  EXPECT_EQ(t->encode("ab", true, true), (std::vector<int32_t>{2}));
}

}  // namespace
}  // namespace imq::tok
