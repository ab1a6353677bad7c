// HF folders with a byte-level BPE tokenizer.json instead of tokenizer.model. The vocabulary of
// ../shared/models/moe-gpt2bpe-f32.gguf (a GPT-2-style BPE GGUF) is written as tokenizer.json
// (vocab by id, merges, <|endoftext|> as a special added token, tokenizer_config.json naming it
// bos and eos) beside a tiny llama; imq convert must give that GGUF's tokenizer keys, and the
// folder used as a model must tokenize text to llama-tokenize's ids on the GGUF
// (reference/moe-gpt2bpe/tokens-*.txt). The pre-tokenizer name comes from the split regex.
#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "hf_folder_writer.h"
#include "imq/error.h"
#include "imq/gguf.h"
#include "imq/hf.h"
#include "test_util.h"

namespace imq::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int64_t kHidden = 16;

// A one-layer llama of `vocab` tokens (weights are irrelevant here).
void write_tiny_llama(const fs::path& d, int64_t vocab) {
  fs::create_directories(d);
  write_file(d / "config.json",
             fmt::format(R"({{"architectures":["LlamaForCausalLM"],"hidden_size":{},"num_hidden_layers":1,)"
                         R"("num_attention_heads":2,"num_key_value_heads":1,"intermediate_size":32,"vocab_size":{},)"
                         R"("max_position_embeddings":256,"rms_norm_eps":1e-5,"rope_theta":10000.0}})",
                         kHidden, vocab));
  auto t = [](std::string n, std::vector<int64_t> shape) {
    size_t el = 1;
    for (auto x : shape) el *= size_t(x);
    return StT{std::move(n), "BF16", shape, bf16s(el, [](size_t i) { return float(i % 7) / 8.0f - 0.375f; })};
  };
  const std::vector<StT> ts = {
      t("lm_head.weight", {vocab, kHidden}), t("model.embed_tokens.weight", {vocab, kHidden}),
      t("model.layers.0.input_layernorm.weight", {kHidden}), t("model.layers.0.mlp.down_proj.weight", {kHidden, 32}),
      t("model.layers.0.mlp.gate_proj.weight", {32, kHidden}), t("model.layers.0.mlp.up_proj.weight", {32, kHidden}),
      t("model.layers.0.post_attention_layernorm.weight", {kHidden}),
      t("model.layers.0.self_attn.k_proj.weight", {8, kHidden}),
      t("model.layers.0.self_attn.o_proj.weight", {kHidden, kHidden}),
      t("model.layers.0.self_attn.q_proj.weight", {kHidden, kHidden}),
      t("model.layers.0.self_attn.v_proj.weight", {8, kHidden}), t("model.norm.weight", {kHidden})};
  write_file(d / "model.safetensors", safetensors(ts));
}

// tokenizer.json of a GGUF's gpt2 vocabulary: control tokens become special added tokens.
json tokenizer_json_of(const gguf::File& g, bool pair_merges) {
  const auto& toks = g.get("tokenizer.ggml.tokens").as_array().items;
  const auto& types = g.get("tokenizer.ggml.token_type").as_array().items;
  json vocab = json::object(), added = json::array(), merges = json::array();
  for (size_t i = 0; i < toks.size(); ++i) {
    vocab[toks[i].as_string()] = i;
    if (types[i].as_int() == 3)
      added.push_back({{"id", i}, {"content", toks[i].as_string()}, {"single_word", false}, {"lstrip", false},
                       {"rstrip", false}, {"normalized", false}, {"special", true}});
  }
  for (const auto& m : g.get("tokenizer.ggml.merges").as_array().items) {
    const std::string& s = m.as_string();
    const size_t sp = s.find(' ');
    if (pair_merges) merges.push_back({s.substr(0, sp), s.substr(sp + 1)});
    else merges.push_back(s);
  }
  return {{"version", "1.0"},
          {"added_tokens", added},
          {"normalizer", nullptr},
          {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}}},
          {"post_processor", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}, {"use_regex", true}}},
          {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
          {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", ""},
                     {"end_of_word_suffix", ""}, {"fuse_unk", false}, {"byte_fallback", false}, {"vocab", vocab},
                     {"merges", merges}}}};
}

void write_gpt2bpe_folder(const gguf::File& g, const fs::path& d, bool pair_merges) {
  write_tiny_llama(d, int64_t(g.get("tokenizer.ggml.tokens").as_array().items.size()));
  write_file(d / "tokenizer.json", tokenizer_json_of(g, pair_merges).dump());
  write_file(d / "tokenizer_config.json",
             R"({"add_bos_token": false, "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",)"
             R"( "model_max_length": 256, "tokenizer_class": "GPT2Tokenizer"})");
}

const char* const kTokenizerKeys[] = {"tokenizer.ggml.model",    "tokenizer.ggml.pre",
                                      "tokenizer.ggml.tokens",   "tokenizer.ggml.token_type",
                                      "tokenizer.ggml.merges",   "tokenizer.ggml.bos_token_id",
                                      "tokenizer.ggml.eos_token_id", "tokenizer.ggml.add_bos_token"};

// The tokenizer.* keys of a file, in order.
std::vector<std::string> tokenizer_key_names(const gguf::File& f) {
  std::vector<std::string> v;
  for (const auto& kv : f.kvs())
    if (kv.key.rfind("tokenizer.", 0) == 0) v.push_back(kv.key);
  return v;
}

class HfTokenizerJson : public ::testing::TestWithParam<bool> {};

TEST_P(HfTokenizerJson, ConvertGivesTheGgufsTokenizerKeys) {
  IMQ_NEED_SHARED(gguf_path, "models/moe-gpt2bpe-f32.gguf");
  const gguf::File ref = gguf::File::open(gguf_path);
  TempDir tmp;
  const fs::path d = tmp.path() / "m";
  write_gpt2bpe_folder(ref, d, GetParam());
  const std::string out = tmp.file("out.gguf");
  const RunResult r = run_imq("convert " + d.string() + " " + out + " --outtype f32");
  ASSERT_EQ(r.rc, 0) << r.err;
  const gguf::File got = gguf::File::open(out);
  for (const char* k : kTokenizerKeys) {
    ASSERT_NE(got.find(k), nullptr) << k;
    EXPECT_TRUE(got.get(k) == ref.get(k)) << k;
  }
  // Those keys and no other, in the GGUF's order.
  EXPECT_EQ(tokenizer_key_names(got), std::vector<std::string>(std::begin(kTokenizerKeys), std::end(kTokenizerKeys)));
}

INSTANTIATE_TEST_SUITE_P(Merges, HfTokenizerJson, ::testing::Values(false, true),
                         [](const auto& info) { return std::string(info.param ? "Pairs" : "Strings"); });

// The folder as a model path tokenizes as llama.cpp does on the GGUF.
TEST(HfTokenizerJsonModel, TokenizesLikeLlamaCpp) {
  IMQ_NEED_SHARED(gguf_path, "models/moe-gpt2bpe-f32.gguf");
  const gguf::File ref = gguf::File::open(gguf_path);
  TempDir tmp;
  const fs::path d = tmp.path() / "m";
  write_gpt2bpe_folder(ref, d, false);
  for (const auto& [key, data] : {std::pair<const char*, const char*>{"wiki100", "wiki.test.head100.txt"},
                                  {"calib200", "calibration_datav3_small.head200.txt"}}) {
    IMQ_NEED_SHARED(text, std::string("data/") + data);
    IMQ_NEED_SHARED(ids, std::string("reference/moe-gpt2bpe/tokens-") + key + ".txt");
    const RunResult r = run_imq("tokenize -m " + d.string() + " -f " + text + " --ids --log-disable");
    ASSERT_EQ(r.rc, 0) << r.err;
    EXPECT_EQ(r.out, read_all(ids)) << key;
  }
}

// tokenizer.ggml.pre from the pre-tokenizer's split regex; an unknown one is an error.
TEST(HfTokenizerJsonPre, NamedFromTheSplitRegex) {
  IMQ_NEED_SHARED(gguf_path, "models/moe-gpt2bpe-f32.gguf");
  const gguf::File ref = gguf::File::open(gguf_path);
  const std::string llama3 =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  const std::string qwen2 =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  for (const auto& [regex, pre] : {std::pair<std::string, std::string>{llama3, "llama-bpe"},
                                   {qwen2, "qwen2"},
                                   {R"(\w+|[^\w\s]+)", ""}}) {
    TempDir tmp;
    const fs::path d = tmp.path() / "m";
    write_gpt2bpe_folder(ref, d, false);
    json tj = tokenizer_json_of(ref, false);
    tj["pre_tokenizer"] = {
        {"type", "Sequence"},
        {"pretokenizers",
         {{{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}, {"invert", false}},
          {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}}}}};
    write_file(d / "tokenizer.json", tj.dump());
    if (!pre.empty()) {
      const gguf::File f = gguf::File::from_memory("m", hf::convert_to_memory(d.string(), {hf::OutType::F32}));
      EXPECT_EQ(f.get("tokenizer.ggml.pre").as_string(), pre);
      continue;
    }
    try {
      (void)hf::convert_to_memory(d.string(), {});
      FAIL() << "unknown regex accepted";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
      EXPECT_NE(msg.find((d / "tokenizer.json").string()), std::string::npos) << msg;
      EXPECT_NE(msg.find("split regex"), std::string::npos) << msg;
    }
  }
}

}  // namespace
}  // namespace imq::test
