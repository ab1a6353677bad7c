// tokenizer.ggml.pre -> the regexes of that model family's pre-tokenizer (from the public
// tokenizer configs of GPT-2, Llama 3, Qwen2, DeepSeek, Falcon, StarCoder, ...), in the form
// llama.cpp applies them: case-insensitive groups spelled out, and for some families several
// regexes applied one after the other.
#include <algorithm>
#include <initializer_list>

#include "imq/error.h"
#include "model/tokenizer/pretokenizer.h"

namespace imq::tok {

namespace {

// GPT-2 (without the final `|\s+`, which llama.cpp leaves out: the stretches it would match
// stay unmatched and become pieces of their own anyway).
constexpr const char* kGpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";
constexpr const char* kContractions = R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]))";
constexpr const char* kLlama3Tail =
    R"(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen2Tail =
    R"(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kBloom = " ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{FF0C}\\x{3001}\\x{964}\\x{6D4}\\x{60C})]+";
// Upper/lower-case runs written with lookaheads (Tekken, GPT-4o).
constexpr const char* kUpperRun = R"(((?=[\p{L}])([^a-z])))";
constexpr const char* kLowerRun = R"(((?=[\p{L}])([^A-Z])))";

// DeepSeek LLM: cased letters, ASCII/full-width punctuation, CJK and Hangul runs.
constexpr const char* kDeepseekLetters =
    "\\s?["
    "A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}"
    "\\x{1C4}-\\x{293}\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}"
    "\\x{37F}\\x{386}\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}"
    "\\x{3F7}-\\x{481}\\x{48A}-\\x{52F}\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}"
    "\\x{13A0}-\\x{13F5}\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}"
    "\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}"
    "\\x{1F18}-\\x{1F1D}\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}"
    "\\x{1F5B}\\x{1F5D}\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}"
    "\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}"
    "\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}"
    "\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}\\x{2126}\\x{2128}"
    "\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}\\x{2139}\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}"
    "\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}"
    "\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}"
    "\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}"
    "\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}"
    "\\x{104B0}-\\x{104D3}\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}"
    "\\x{118A0}-\\x{118DF}\\x{1E900}-\\x{1E943}"
    "]+";
constexpr const char* kDeepseekPunct =
    "\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+";
constexpr const char* kCjkHangul = "[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+";

bool one_of(std::string_view s, std::initializer_list<std::string_view> names) {
  return std::find(names.begin(), names.end(), s) != names.end();
}

}  // namespace

PreTokenizerSpec pre_tokenizer_spec(std::string_view pre) {
  PreTokenizerSpec s;
  const std::string llama3 = std::string(kContractions) + kLlama3Tail;
  if (pre.empty() || pre == "default") {
    s.regexes = {R"([\p{P}\$\+<=>\^~\|]+)", kGpt2, R"(\p{N}+)", "[0-9][0-9][0-9]"};
  } else if (one_of(pre, {"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2"})) {
    s.regexes = {llama3};
    s.ignore_merges = true;
    s.add_bos = true;
  } else if (one_of(pre, {"dbrx", "smaug-bpe"})) {
    s.regexes = {llama3};
  } else if (pre == "deepseek-llm") {
    s.regexes = {"[\r\n]", kDeepseekLetters, kDeepseekPunct, "\\s+$", kCjkHangul, R"(\p{N}+)"};
  } else if (one_of(pre, {"deepseek-v3", "hunyuan-dense"})) {
    s.regexes = {R"(\p{N}{1,3})", "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+",
                 "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
                 " ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"};
  } else if (pre == "deepseek-coder") {
    s.regexes = {"[\r\n]", R"(\s?\p{L}+)", R"(\s?\p{P}+)", kCjkHangul, R"(\p{N})"};
  } else if (pre == "falcon") {
    s.regexes = {R"([\p{P}\$\+<=>\^~\|`]+)", kGpt2, "[0-9][0-9][0-9]"};
  } else if (one_of(pre, {"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"})) {
    s.regexes = {R"(\p{N})", kGpt2};
  } else if (one_of(pre, {"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v1-en", "jina-v2-es",
                          "jina-v2-de", "jina-v2-code", "a.x-4.0", "mellum", "mpt", "olmo", "jais", "trillion"})) {
    s.regexes = {kGpt2};
  } else if (one_of(pre, {"qwen2", "deepseek-r1-qwen", "stablelm2", "megrez", "hunyuan"})) {
    s.regexes = {std::string(kContractions) + kQwen2Tail};
  } else if (one_of(pre, {"poro-chat", "bloom", "gpt3-finnish"})) {
    s.regexes = {kBloom};
  } else if (one_of(pre, {"chatglm-bpe", "glm4"})) {
    s.regexes = {llama3};
    s.no_bos = true;
  } else if (pre == "viking") {
    s.regexes = {kBloom, R"(\p{N})"};
  } else if (pre == "tekken") {
    s.regexes = {std::string(R"([^\r\n\p{L}\p{N}]?)") + kUpperRun + "*" + kLowerRun + R"(+|[^\r\n\p{L}\p{N}]?)" +
                 kUpperRun + "+" + kLowerRun + R"(*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)"};
    s.ignore_merges = true;
    s.add_bos = true;
  } else if (one_of(pre, {"gpt-4o", "llama4"})) {
    s.regexes = {std::string(R"([^\r\n\p{L}\p{N}]?)") + kUpperRun + "*" + kLowerRun + "+" + kContractions +
                 R"(?|[^\r\n\p{L}\p{N}]?)" + kUpperRun + "+" + kLowerRun + "*" + kContractions +
                 R"(?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)"};
  } else {
    throw_error("unknown pre-tokenizer type '{}'", pre);
  }
  return s;
}

}  // namespace imq::tok
