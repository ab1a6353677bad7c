// A tiny HF folder written by the test (llama, hidden 16, 2 heads / 1 KV head, one layer, a
// 262-piece SentencePiece model, vocab_size 264), converted correctly; then malformed copies of
// each file (safetensors, index, config.json, tokenizer.model), each of which must give one
// line naming the file and what was wrong.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>

#include "core/fp16.h"
#include "hf/safetensors.h"
#include "imq/error.h"
#include "imq/gguf.h"
#include "imq/hf.h"
#include "hf_folder_writer.h"
#include "test_util.h"

namespace imq::test {
namespace {

namespace fs = std::filesystem;

std::string tokenizer_model() {
  std::string s = sp_piece("<unk>", 0, 2) + sp_piece("<s>", 0, 3) + sp_piece("</s>", 0, 3);
  for (int b = 0; b < 256; ++b) s += sp_piece(fmt::format("<0x{:02X}>", b), 0, 6);
  s += sp_piece("\xe2\x96\x81" "a", -1, 1) + sp_piece("b", -2, 1) + sp_piece("c", -3, 4);
  // trainer_spec (field 2), skipped by the reader
  s += "\x12\x02\x08\x02";
  return s;
}

constexpr const char* kConfig = R"({"architectures":["LlamaForCausalLM"],"hidden_size":16,"num_hidden_layers":1,
"num_attention_heads":2,"num_key_value_heads":1,"intermediate_size":32,"vocab_size":264,
"max_position_embeddings":64,"rms_norm_eps":1e-5,"rope_theta":10000.0,"bos_token_id":1,"eos_token_id":2})";

std::vector<StT> tiny_tensors() {
  auto t = [](std::string n, std::vector<int64_t> shape) {
    size_t el = 1;
    for (auto d : shape) el *= size_t(d);
    // Row r holds r + column/64: the Q/K permutation can be read back from the values.
    const int64_t cols = shape.size() > 1 ? shape[1] : 1;
    return StT{std::move(n), "BF16", shape, bf16s(el, [cols](size_t i) { return float(i / size_t(cols)) + float(i % size_t(cols)) / 64.0f; })};
  };
  return {t("lm_head.weight", {264, 16}), t("model.embed_tokens.weight", {264, 16}),
          t("model.layers.0.input_layernorm.weight", {16}), t("model.layers.0.mlp.down_proj.weight", {16, 32}),
          t("model.layers.0.mlp.gate_proj.weight", {32, 16}), t("model.layers.0.mlp.up_proj.weight", {32, 16}),
          t("model.layers.0.post_attention_layernorm.weight", {16}),
          t("model.layers.0.self_attn.k_proj.weight", {8, 16}), t("model.layers.0.self_attn.o_proj.weight", {16, 16}),
          t("model.layers.0.self_attn.q_proj.weight", {16, 16}), t("model.layers.0.self_attn.v_proj.weight", {8, 16}),
          t("model.norm.weight", {16})};
}

void write_tiny(const fs::path& d) {
  fs::create_directories(d);
  write_file(d / "config.json", kConfig);
  write_file(d / "tokenizer.model", tokenizer_model());
  write_file(d / "tokenizer_config.json", R"({"add_bos_token":true,"add_eos_token":false})");
  write_file(d / "model.safetensors", safetensors(tiny_tensors()));
}

// GPT-2's byte -> printable character map (bytes_to_unicode), as UTF-8.
std::string byte_token(int b) {
  auto printable = [](int c) {
    return (c >= 0x21 && c <= 0x7e) || (c >= 0xa1 && c <= 0xac) || (c >= 0xae && c <= 0xff);
  };
  int cp = b;
  if (!printable(b)) {
    cp = 256;
    for (int c = 0; c < b; ++c) cp += !printable(c);
  }
  std::string s;
  if (cp < 0x80) s += char(cp);
  else s += char(0xc0 | (cp >> 6)), s += char(0x80 | (cp & 0x3f));
  return s;
}

// A byte-level BPE tokenizer.json for the tiny folder: the 256 byte tokens, "Ġt" and "he" (ids
// 256, 257, from two merges), <|endoftext|> (258, special); vocab_size 264 pads the rest.
std::string tiny_tokenizer_json() {
  std::string vocab;
  for (int b = 0; b < 256; ++b) {
    std::string t = byte_token(b);
    if (t == "\"" || t == "\\") t = "\\" + t;
    vocab += fmt::format("\"{}\":{},", t, b);
  }
  vocab += "\"\u0120t\":256,\"he\":257,\"<|endoftext|>\":258";
  return R"({"version":"1.0","added_tokens":[{"id":258,"content":"<|endoftext|>","special":true}],)"
         R"("pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"use_regex":true},)"
         R"("model":{"type":"BPE","vocab":{)" + vocab + R"(},"merges":["\u0120 t","h e"]}})";
}

// The tiny folder with tokenizer.json in place of tokenizer.model.
void use_tokenizer_json(const fs::path& d, const std::string& text) {
  fs::remove(d / "tokenizer.model");
  write_file(d / "tokenizer.json", text);
}

float row_of(const gguf::File& f, const std::string& name, int64_t row) {
  const auto& t = f.tensor(name);
  const auto d = f.tensor_data(t);
  uint16_t h;
  std::memcpy(&h, d.data() + size_t(row * t.ne[0]) * 2, 2);
  return t.type == GgmlType::BF16 ? bf16_to_f32(h) : f16_to_f32(h);
}

TEST(HfTiny, ConvertsWithPermutedQkAndPaddedVocab) {
  TempDir tmp;
  write_tiny(tmp.path() / "m");
  const gguf::File f = gguf::File::from_memory(
      "tiny", hf::convert_to_memory((tmp.path() / "m").string(), {hf::OutType::BF16}));
  // Q: 2 heads of 8 rows: new rows 0..7 are old rows 0,4,1,5,2,6,3,7 (pairs re-interleaved).
  const int64_t q_want[] = {0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15};
  for (int64_t r = 0; r < 16; ++r) EXPECT_EQ(row_of(f, "blk.0.attn_q.weight", r), float(q_want[r])) << r;
  // K: one KV head of 8 rows.
  for (int64_t r = 0; r < 8; ++r) EXPECT_EQ(row_of(f, "blk.0.attn_k.weight", r), float(q_want[r])) << r;
  EXPECT_EQ(row_of(f, "blk.0.attn_v.weight", 1), 1.0f);
  EXPECT_EQ(f.tensor("blk.0.attn_norm.weight").type, GgmlType::F32);
  EXPECT_EQ(f.tensor("blk.0.ffn_down.weight").type, GgmlType::BF16);
  // Tensor order: sorted HF names (lm_head first).
  EXPECT_EQ(f.tensors().front().name, "output.weight");
  const auto& toks = f.get("tokenizer.ggml.tokens").as_array().items;
  const auto& types = f.get("tokenizer.ggml.token_type").as_array().items;
  ASSERT_EQ(toks.size(), 264u);
  EXPECT_EQ(toks[259].as_string(), "\xe2\x96\x81" "a");
  EXPECT_EQ(toks[263].as_string(), "[PAD263]");
  EXPECT_EQ(types[263].as_int(), 5);
  EXPECT_EQ(types[261].as_int(), 1);  // a user-defined piece is written as normal, as the converter does
  EXPECT_EQ(types[3].as_int(), 6);
  EXPECT_EQ(f.get_int("tokenizer.ggml.bos_token_id"), 1);
  EXPECT_EQ(std::get<bool>(f.get("tokenizer.ggml.add_bos_token").data), true);
  EXPECT_EQ(f.find("tokenizer.ggml.unknown_token_id"), nullptr);
}

TEST(HfTiny, TokenizerJsonGivesAGpt2Vocabulary) {
  TempDir tmp;
  const fs::path d = tmp.path() / "m";
  write_tiny(d);
  use_tokenizer_json(d, tiny_tokenizer_json());
  write_file(d / "tokenizer_config.json", R"({"add_bos_token":false,"eos_token":"<|endoftext|>"})");
  const gguf::File f = gguf::File::from_memory("tiny", hf::convert_to_memory(d.string(), {hf::OutType::BF16}));
  EXPECT_EQ(f.get("tokenizer.ggml.model").as_string(), "gpt2");
  EXPECT_EQ(f.get("tokenizer.ggml.pre").as_string(), "gpt-2");
  EXPECT_EQ(f.find("tokenizer.ggml.scores"), nullptr);
  const auto& toks = f.get("tokenizer.ggml.tokens").as_array().items;
  const auto& types = f.get("tokenizer.ggml.token_type").as_array().items;
  ASSERT_EQ(toks.size(), 264u);
  EXPECT_EQ(toks[32].as_string(), "\xc4\xa0");  // the space byte
  EXPECT_EQ(toks[256].as_string(), "\xc4\xa0t");
  EXPECT_EQ(types[256].as_int(), 1);
  EXPECT_EQ(toks[258].as_string(), "<|endoftext|>");
  EXPECT_EQ(types[258].as_int(), 3);
  EXPECT_EQ(toks[259].as_string(), "[PAD259]");
  EXPECT_EQ(types[259].as_int(), 5);
  const auto& merges = f.get("tokenizer.ggml.merges").as_array().items;
  ASSERT_EQ(merges.size(), 2u);
  EXPECT_EQ(merges[0].as_string(), "\xc4\xa0 t");
  // eos from tokenizer_config.json (found among the added tokens), bos from config.json.
  std::vector<std::string> keys;
  for (const auto& kv : f.kvs())
    if (kv.key.find("_token") != std::string::npos) keys.push_back(kv.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"tokenizer.ggml.eos_token_id", "tokenizer.ggml.bos_token_id",
                                            "tokenizer.ggml.add_bos_token"}));
  EXPECT_EQ(f.get_int("tokenizer.ggml.eos_token_id"), 258);
  EXPECT_EQ(f.get_int("tokenizer.ggml.bos_token_id"), 1);
}

// One malformed folder: `mutate` edits a fresh copy of the tiny folder; the conversion must
// fail with one line naming `file` (relative to the folder) and containing `what`.
struct Bad {
  std::string name;
  std::function<void(const fs::path&)> mutate;
  std::string file;
  std::vector<std::string> what;
};

void replace_in(const fs::path& p, const std::string& from, const std::string& to) {
  std::string s = read_all(p.string());
  const size_t i = s.find(from);
  ASSERT_NE(i, std::string::npos) << from;
  s.replace(i, from.size(), to);
  write_file(p, s);
}

std::vector<StT> without(std::vector<StT> ts, const std::string& name) {
  std::erase_if(ts, [&](const StT& t) { return t.name == name; });
  return ts;
}

const std::vector<Bad>& bad_cases() {
  static const std::vector<Bad> cases = {
      {"Truncated", [](const fs::path& d) { write_file(d / "model.safetensors", std::string("\x10\0\0", 3)); }, "model.safetensors",
       {"too short", "3 bytes"}},
      {"HeaderLengthAbsurd", [](const fs::path& d) {
         std::string s = read_all((d / "model.safetensors").string());
         s.replace(0, 8, u64le(uint64_t(1) << 62));
         write_file(d / "model.safetensors", s);
       }, "model.safetensors", {"header length 4611686018427387904", "past the end"}},
      {"HeaderNotJson", [](const fs::path& d) {
         write_file(d / "model.safetensors", u64le(6) + "{\"a\":}");
       }, "model.safetensors", {"not valid JSON", "column 6"}},
      {"DataTruncated", [](const fs::path& d) {
         std::string s = read_all((d / "model.safetensors").string());
         write_file(d / "model.safetensors", s.substr(0, s.size() - 10));
       }, "model.safetensors", {"model.norm.weight", "past the end of the data section"}},
      {"WrongDtype", [](const fs::path& d) {
         write_file(d / "model.safetensors", safetensors(tiny_tensors(), R"("__metadata__":{"format":"pt"},)", "\"BF16\"", "\"I8\""));
       },
       "model.safetensors", {"dtype I8", "not supported", "lm_head.weight"}},
      {"ShapeVsBytes", [](const fs::path& d) {
         write_file(d / "model.safetensors", safetensors(tiny_tensors(), R"("__metadata__":{"format":"pt"},)", "[264,16]", "[263,16]"));
       }, "model.safetensors", {"lm_head.weight", "needs 8416"}},
      {"Overlap", [](const fs::path& d) {
         // Point the embedding at lm_head's bytes: same size, overlapping range.
         write_file(d / "model.safetensors", safetensors(tiny_tensors(), R"("__metadata__":{"format":"pt"},)",
                                                         "[8448,16896]", "[0,8448]"));
       }, "model.safetensors", {"overlap", "lm_head.weight", "model.embed_tokens.weight"}},
      {"ZeroDimensionHidesHugeOnes", [](const fs::path& d) {
         // Issue 15 (fuzzing; UBSan in fuzz_safetensors): 2^62 x 3 x 0 is an empty tensor, but its
         // element count multiplied in order overflowed int64.
         auto ts = tiny_tensors();
         ts.push_back({"model.extra.weight", "F32", {int64_t(1) << 62, 3, 0}, ""});
         write_file(d / "model.safetensors", safetensors(ts));
       }, "model.safetensors",
       {"model.extra.weight", "13835058055282163712 elements (not counting its zero dimensions) is absurd"}},
      {"DuplicateName", [](const fs::path& d) {
         auto ts = tiny_tensors();
         ts.push_back(ts.back());
         write_file(d / "model.safetensors", safetensors(ts));
       }, "model.safetensors", {"names model.norm.weight twice"}},
      {"MetadataNotString", [](const fs::path& d) {
         write_file(d / "model.safetensors", safetensors(tiny_tensors(), R"("__metadata__":{"format":1},)"));
       }, "model.safetensors", {"__metadata__", "format", "not a string"}},
      {"IndexNamesMissingTensor", [](const fs::path& d) {
         auto ts = tiny_tensors();
         fs::remove(d / "model.safetensors");
         write_file(d / "model-00001-of-00001.safetensors", safetensors(without(ts, "model.norm.weight")));
         std::string idx = R"({"metadata":{},"weight_map":{)";
         for (size_t i = 0; i < ts.size(); ++i)
           idx += (i ? "," : "") + fmt::format(R"("{}":"model-00001-of-00001.safetensors")", ts[i].name);
         write_file(d / "model.safetensors.index.json", idx + "}}");
       }, "model-00001-of-00001.safetensors", {"model.norm.weight", "listed in", "missing from the shard"}},
      {"ConfigMissingKey", [](const fs::path& d) { replace_in(d / "config.json", "\"hidden_size\":16,", ""); },
       "config.json", {"missing key hidden_size", "LlamaForCausalLM"}},
      {"ConfigUnsupportedClass", [](const fs::path& d) {
         replace_in(d / "config.json", "LlamaForCausalLM", "GPTNeoXForCausalLM");
       }, "config.json", {"GPTNeoXForCausalLM", "not supported"}},
      {"ConfigNotJson", [](const fs::path& d) { write_file(d / "config.json", "{\"architectures\": ["); },
       "config.json", {"not valid JSON"}},
      // Issue 15 (found by fuzz_hf_config and fuzz_safetensors): a number past double's range
      // is nlohmann's out_of_range, not a parse_error, and escaped the readers without a file name.
      {"ConfigNumberOverflow", [](const fs::path& d) {
         replace_in(d / "config.json", "\"hidden_size\":16", "\"hidden_size\":1e400");
       }, "config.json", {"not valid JSON (number overflow parsing '1e400')"}},
      {"HeaderNumberOverflow", [](const fs::path& d) {
         write_file(d / "model.safetensors", safetensors(tiny_tensors(), R"("__metadata__":{"format":"pt"},"x":-5e999,)"));
       }, "model.safetensors", {"header is not valid JSON (number overflow parsing '-5e999')"}},
      {"IndexNumberOverflow", [](const fs::path& d) {
         fs::rename(d / "model.safetensors", d / "model-00001-of-00001.safetensors");
         write_file(d / "model.safetensors.index.json", R"({"metadata":{"total_size":1e400},"weight_map":{}})");
       }, "model.safetensors.index.json", {"not valid JSON (number overflow parsing '1e400')"}},
      {"ConfigContradictsShapes", [](const fs::path& d) {
         replace_in(d / "config.json", "\"intermediate_size\":32", "\"intermediate_size\":48");
       }, "model.safetensors", {"model.layers.0.mlp.down_proj.weight", "[16, 32]", "config.json", "[16, 48]"}},
      {"MissingTensor", [](const fs::path& d) {
         write_file(d / "model.safetensors", safetensors(without(tiny_tensors(), "model.layers.0.mlp.up_proj.weight")));
       }, "", {"blk.0.ffn_up.weight", "lack"}},
      {"UnknownTensor", [](const fs::path& d) {
         auto ts = tiny_tensors();
         ts.push_back({"model.layers.0.self_attn.q_norm.weight", "BF16", {8}, std::string(16, '\0')});
         write_file(d / "model.safetensors", safetensors(ts));
       }, "model.safetensors", {"model.layers.0.self_attn.q_norm.weight", "no GGUF name"}},
      {"TokenizerTruncated", [](const fs::path& d) {
         const std::string s = tokenizer_model();
         write_file(d / "tokenizer.model", s.substr(0, 100));
       }, "tokenizer.model", {"offset", "runs past the end"}},
      {"TokenizerGarbage", [](const fs::path& d) { write_file(d / "tokenizer.model", "\x17\x0f\x0f\x0f"); },
       "tokenizer.model", {"invalid wire type"}},
      {"TokenizerMissing", [](const fs::path& d) { fs::remove(d / "tokenizer.model"); }, "tokenizer.model",
       {"missing"}},
      {"TokenizerTooManyPieces", [](const fs::path& d) {
         write_file(d / "tokenizer.model", tokenizer_model() + sp_piece("d", -4, 1) + sp_piece("e", -5, 1) + sp_piece("f", -6, 1));
       }, "tokenizer.model", {"265 pieces", "vocab_size 264"}},
      {"TokenizerDuplicatePiece", [](const fs::path& d) {
         write_file(d / "tokenizer.model", tokenizer_model() + sp_piece("b", -4, 1));
       }, "tokenizer.model", {"piece b (id 262) is defined twice"}},
      {"TensorPastLayerCount", [](const fs::path& d) {
         auto ts = tiny_tensors();
         ts.push_back({"model.layers.1.input_layernorm.weight", "BF16", {16}, std::string(32, '\0')});
         write_file(d / "model.safetensors", safetensors(ts));
       }, "model.safetensors", {"model.layers.1.input_layernorm.weight", "layer 1 is past", "num_hidden_layers 1"}},
      {"ConfigAbsurdLayerCount", [](const fs::path& d) {
         replace_in(d / "config.json", "\"num_hidden_layers\":1", "\"num_hidden_layers\":2000000000");
       }, "config.json", {"num_hidden_layers 2000000000", "needs at least", "hold 12"}},
      {"TokJsonNotJson", [](const fs::path& d) { use_tokenizer_json(d, "{\"model\": "); }, "tokenizer.json",
       {"not valid JSON"}},
      {"TokJsonNoModel", [](const fs::path& d) { use_tokenizer_json(d, R"({"added_tokens":[]})"); },
       "tokenizer.json", {"missing \"model\""}},
      {"TokJsonNotBpe", [](const fs::path& d) {
         std::string t = tiny_tokenizer_json();
         t.replace(t.find("\"BPE\""), 5, "\"Unigram\"");
         use_tokenizer_json(d, t);
       }, "tokenizer.json", {"\"Unigram\"", "not supported"}},
      {"TokJsonVocabGap", [](const fs::path& d) {
         std::string t = tiny_tokenizer_json();
         t.replace(t.find("\"he\":257"), 8, "\"he\":300");
         use_tokenizer_json(d, t);
       }, "tokenizer.json", {"\"he\"", "id 300", "without gaps"}},
      {"TokJsonVocabDuplicateId", [](const fs::path& d) {
         std::string t = tiny_tokenizer_json();
         t.replace(t.find("\"he\":257"), 8, "\"he\":256");
         use_tokenizer_json(d, t);
       }, "tokenizer.json", {"vocab id 256 is given to both"}},
      {"TokJsonMergeUnknownToken", [](const fs::path& d) {
         std::string t = tiny_tokenizer_json();
         t.replace(t.find("\"h e\""), 5, "\"h ez\"");
         use_tokenizer_json(d, t);
       }, "tokenizer.json", {"merge 1", "\"ez\"", "not in the vocab"}},
      {"TokJsonUnknownSplitRegex", [](const fs::path& d) {
         std::string t = tiny_tokenizer_json();
         t.replace(t.find("{\"type\":\"ByteLevel\""), 0,
                   R"({"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"\\w+\n"}},)");
         t.replace(t.find("\"use_regex\":true}"), 17, "\"use_regex\":false}]}");
         use_tokenizer_json(d, t);
       }, "tokenizer.json", {"split regex \"\\\\w+\\n\"", "not one imq can name"}},
      {"TokJsonSentencePieceStyle", [](const fs::path& d) {
         std::string t = tiny_tokenizer_json();
         t.replace(t.find("\"type\":\"BPE\""), 12, "\"type\":\"BPE\",\"byte_fallback\":true");
         use_tokenizer_json(d, t);
       }, "tokenizer.json", {"byte_fallback", "not supported", "tokenizer.model"}},
  };
  return cases;
}

class HfBad : public ::testing::TestWithParam<Bad> {};

TEST_P(HfBad, OneLineNamingFileAndProblem) {
  const Bad& b = GetParam();
  TempDir tmp;
  const fs::path d = tmp.path() / "m";
  write_tiny(d);
  b.mutate(d);
  std::string msg;
  try {
    (void)hf::convert_to_memory(d.string(), {});
    FAIL() << "no error";
  } catch (const Error& e) {
    msg = e.what();
  }
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  const std::string file = b.file.empty() ? d.string() : (d / b.file).string();
  EXPECT_NE(msg.find(file), std::string::npos) << msg;
  for (const auto& w : b.what) EXPECT_NE(msg.find(w), std::string::npos) << "'" << w << "' not in: " << msg;
}

INSTANTIATE_TEST_SUITE_P(All, HfBad, ::testing::ValuesIn(bad_cases()),
                         [](const auto& info) { return info.param.name; });

// Through the CLI: exit status 1, one stderr line, no output file left behind.
TEST(HfBadCli, ConvertFailsCleanly) {
  TempDir tmp;
  const fs::path d = tmp.path() / "m";
  write_tiny(d);
  replace_in(d / "config.json", "\"hidden_size\":16,", "");
  const std::string out = tmp.file("out.gguf");
  const RunResult r = run_imq("convert " + d.string() + " " + out);
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find((d / "config.json").string() + ": missing key hidden_size"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out));
  EXPECT_EQ(std::distance(fs::directory_iterator(tmp.path()), fs::directory_iterator()), 1);
}

}  // namespace
}  // namespace imq::test
