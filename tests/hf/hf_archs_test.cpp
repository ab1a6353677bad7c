// imq convert for Qwen2ForCausalLM, Qwen3ForCausalLM, Qwen3MoeForCausalLM and Gemma3ForCausalLM
// against llama.cpp: the HF folders behind ../shared/models/archs/<arch>-bf16.gguf are not
// shipped, so the test writes each one back from the GGUF llama.cpp's convert_hf_to_gguf.py
// made of it, converts it with imq, and compares with the shipped file.
//
// The folder is made by undoing, tensor by tensor, what the converter's source does for these
// classes (its TextModel / Qwen2MoeModel / Gemma3Model and gguf-py's tensor_mapping.py), written
// here separately from src/hf:
//   - GGUF names back to HF names (e.g. gemma3's ffn_norm is pre_feedforward_layernorm and its
//     post_attention_norm is post_attention_layernorm; qwen3moe's router is mlp.gate);
//   - no Q/K row permutation (the converter permutes only for llama/Mixtral);
//   - F32 tensors (norms, biases, router) back to the BF16 they were read from; gemma3's norms
//     minus the 1 the converter adds (found as the BF16 w with float32(w) + 1 == the GGUF value);
//   - qwen3moe's stacked experts split into mlp.experts.E.{gate,up,down}_proj;
//   - config.json from the GGUF's hyperparameters (and the folders' description in
//     models/archs/README.md), the SentencePiece tokenizer.model of models/hf/dense-spm4k (the one
//     those folders used), tokenizer_config.json with the GGUF's add_bos/add_eos.
// Checked against llama.cpp's own output, independently of the inversion: which tensors exist,
// their names, order (the converter's walk over sorted HF names), types (F32 vs BF16) and
// shapes; every metadata key, its type, value and position (reference/archs/<arch>/info.tsv,
// including general.name and size_label, as the folder is named like the original); that the
// norms carry the +1 and Q/K are not permuted (a converter that did otherwise, or forgot the +1,
// changes bytes); and, on the folder used as a model path, that tokenizing gives llama-tokenize's
// ids. Only self-consistent: the bytes of BF16 weight tensors (copied both ways) and the
// config.json values (taken from the GGUF).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>

#include "common/sha256.h"
#include "core/fp16.h"
#include "hf_folder_writer.h"
#include "imq/gguf.h"
#include "imq/hf.h"
#include "test_util.h"

namespace imq::test {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> v;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) v.push_back(l);
  return v;
}

// The HF name of a per-layer GGUF tensor suffix ("attn_q.weight" -> "self_attn.q_proj.weight").
std::string hf_layer_name(const std::string& arch, const std::string& g) {
  static const std::map<std::string, std::string> common = {
      {"attn_norm.weight", "input_layernorm.weight"},     {"attn_q.weight", "self_attn.q_proj.weight"},
      {"attn_k.weight", "self_attn.k_proj.weight"},       {"attn_v.weight", "self_attn.v_proj.weight"},
      {"attn_output.weight", "self_attn.o_proj.weight"},  {"attn_q.bias", "self_attn.q_proj.bias"},
      {"attn_k.bias", "self_attn.k_proj.bias"},           {"attn_v.bias", "self_attn.v_proj.bias"},
      {"attn_q_norm.weight", "self_attn.q_norm.weight"},  {"attn_k_norm.weight", "self_attn.k_norm.weight"},
      {"ffn_gate.weight", "mlp.gate_proj.weight"},        {"ffn_up.weight", "mlp.up_proj.weight"},
      {"ffn_down.weight", "mlp.down_proj.weight"},        {"ffn_gate_inp.weight", "mlp.gate.weight"},
      {"post_attention_norm.weight", "post_attention_layernorm.weight"},
      {"post_ffw_norm.weight", "post_feedforward_layernorm.weight"},
  };
  if (g == "ffn_norm.weight")
    return arch == "gemma3" ? "pre_feedforward_layernorm.weight" : "post_attention_layernorm.weight";
  auto it = common.find(g);
  if (it == common.end()) throw std::runtime_error("no HF name for " + g);
  return it->second;
}

uint16_t bf16_bits_of(float f, const std::string& what) {
  const uint16_t b = f32_to_bf16(f);
  if (bf16_to_f32(b) != f) throw std::runtime_error(what + ": F32 value is not a BF16 value");
  return b;
}

// Gemma's stored w for an effective norm value: float32(w) + 1 == target, w a BF16 value.
uint16_t gemma_norm_bits(float target, const std::string& what) {
  const uint16_t w0 = f32_to_bf16(target - 1.0f);
  for (int d : {0, -1, 1, -2, 2}) {
    const uint16_t w = uint16_t(w0 + d);
    if (bf16_to_f32(w) + 1.0f == target) return w;
  }
  throw std::runtime_error(what + ": no BF16 w gives this value + 1");
}

std::string fnum(double x) { return fmt::format("{}", x); }

// Writes the HF folder of the GGUF `g` (one of models/archs/) into `dir`.
void write_folder(const gguf::File& g, const fs::path& dir, const std::string& spm_model) {
  const std::string arch = g.get("general.architecture").as_string();
  const std::string a = arch + ".";
  fs::create_directories(dir);

  // Tensors.
  std::vector<StT> ts;
  for (const auto& t : g.tensors()) {
    std::vector<int64_t> shape;  // HF order
    for (uint32_t d = t.n_dims; d-- > 0;) shape.push_back(t.ne[d]);
    const auto bytes = g.tensor_data(t);
    const std::string& n = t.name;
    std::string hf;
    int64_t layer = -1;
    std::string suffix;
    if (n == "token_embd.weight") hf = "model.embed_tokens.weight";
    else if (n == "output_norm.weight") hf = "model.norm.weight";
    else if (n == "output.weight") hf = "lm_head.weight";
    else {
      const size_t dot = n.find('.', 4);
      layer = std::stoll(n.substr(4, dot - 4));
      suffix = n.substr(dot + 1);
    }
    if (suffix.find("_exps.") != std::string::npos) {
      // [E, rows, cols] -> E tensors of [rows, cols]
      const std::string proj = suffix.substr(4, suffix.find("_exps") - 4);  // gate / up / down
      const size_t per = bytes.size() / size_t(shape[0]);
      for (int64_t e = 0; e < shape[0]; ++e)
        ts.push_back({fmt::format("model.layers.{}.mlp.experts.{}.{}_proj.weight", layer, e, proj), "BF16",
                      {shape[1], shape[2]},
                      std::string(reinterpret_cast<const char*>(bytes.data()) + per * size_t(e), per)});
      continue;
    }
    if (hf.empty()) hf = fmt::format("model.layers.{}.{}", layer, hf_layer_name(arch, suffix));
    StT st{hf, "BF16", shape, ""};
    if (t.type == GgmlType::BF16) {
      st.data.assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    } else {
      if (t.type != GgmlType::F32) throw std::runtime_error(n + ": unexpected type");
      const bool shift = arch == "gemma3" && std::string_view(hf).ends_with("norm.weight");
      for (size_t i = 0; i < bytes.size() / 4; ++i) {
        float f;
        std::memcpy(&f, bytes.data() + 4 * i, 4);
        const uint16_t b = shift ? gemma_norm_bits(f, n) : bf16_bits_of(f, n);
        st.data.append(reinterpret_cast<const char*>(&b), 2);
      }
    }
    ts.push_back(std::move(st));
  }
  std::sort(ts.begin(), ts.end(), [](const StT& x, const StT& y) { return x.name < y.name; });
  write_file(dir / "model.safetensors", safetensors(ts));

  // config.json.
  static const std::map<std::string, std::string> cls = {{"qwen2", "Qwen2ForCausalLM"},
                                                         {"qwen3", "Qwen3ForCausalLM"},
                                                         {"qwen3moe", "Qwen3MoeForCausalLM"},
                                                         {"gemma3", "Gemma3ForCausalLM"}};
  const size_t n_vocab = g.get("tokenizer.ggml.tokens").as_array().items.size();
  std::string c = fmt::format(
      R"({{"architectures": ["{}"], "hidden_size": {}, "num_hidden_layers": {}, "num_attention_heads": {}, )"
      R"("num_key_value_heads": {}, "intermediate_size": {}, "vocab_size": {}, "max_position_embeddings": {}, )"
      R"("rms_norm_eps": {}, "rope_theta": {}, "head_dim": {}, "tie_word_embeddings": {}, "bos_token_id": {}, )"
      R"("eos_token_id": {})",
      cls.at(arch), g.get_int(a + "embedding_length"), g.get_int(a + "block_count"),
      g.get_int(a + "attention.head_count"), g.get_int(a + "attention.head_count_kv"),
      g.get_int(a + "feed_forward_length"), n_vocab, g.get_int(a + "context_length"),
      fnum(*g.find_float(a + "attention.layer_norm_rms_epsilon")), fnum(*g.find_float(a + "rope.freq_base")),
      g.get_int(a + "attention.key_length"), g.find("output.weight") ? "false" : "true",
      g.get_int("tokenizer.ggml.bos_token_id"), g.get_int("tokenizer.ggml.eos_token_id"));
  if (auto pad = g.find_int("tokenizer.ggml.padding_token_id")) c += fmt::format(R"(, "pad_token_id": {})", *pad);
  if (arch == "qwen3moe")
    c += fmt::format(R"(, "num_experts": {}, "num_experts_per_tok": {}, "moe_intermediate_size": {}, )"
                     R"("decoder_sparse_step": 1, "norm_topk_prob": true, "mlp_only_layers": [])",
                     g.get_int(a + "expert_count"), g.get_int(a + "expert_used_count"),
                     g.get_int(a + "expert_feed_forward_length"));
  if (arch == "gemma3")
    c += fmt::format(R"(, "model_type": "gemma3_text", "rope_local_base_freq": {}, "sliding_window": {}, )"
                     R"("sliding_window_pattern": 6, "query_pre_attn_scalar": 64, )"
                     R"("hidden_activation": "gelu_pytorch_tanh", "final_logit_softcapping": null, )"
                     R"("attn_logit_softcapping": null)",
                     fnum(*g.find_float(a + "rope.freq_base_swa")), g.get_int(a + "attention.sliding_window"));
  write_file(dir / "config.json", c + "}\n");

  // Tokenizer.
  fs::copy_file(spm_model, dir / "tokenizer.model");
  auto flag = [&](const char* k) { return std::get<bool>(g.get(k).data) ? "true" : "false"; };
  write_file(dir / "tokenizer_config.json",
             fmt::format(R"({{"add_bos_token": {}, "add_eos_token": {}}})", flag("tokenizer.ggml.add_bos_token"),
                         flag("tokenizer.ggml.add_eos_token")));
}

std::string join_ne(const gguf::TensorInfo& t) {
  std::string s;
  for (uint32_t d = 0; d < t.n_dims; ++d) s += (d ? "," : "") + std::to_string(t.ne[d]);
  return s;
}

class HfArchs : public ::testing::TestWithParam<std::string> {};

TEST_P(HfArchs, ConvertGivesLlamaCppsFile) {
  const std::string arch = GetParam();
  IMQ_NEED_SHARED(gguf_path, "models/archs/" + arch + "-bf16.gguf");
  IMQ_NEED_SHARED(info_tsv, "reference/archs/" + arch + "/info.tsv");
  IMQ_NEED_SHARED(spm, "models/hf/dense-spm4k/tokenizer.model");
  const gguf::File ref = gguf::File::open(gguf_path);
  TempDir tmp;
  const fs::path dir = tmp.path() / arch;  // named like the original folder (general.name)
  write_folder(ref, dir, spm);

  const std::string out = tmp.file("out.gguf");
  const RunResult r = run_imq("convert " + dir.string() + " " + out + " --outtype bf16");
  ASSERT_EQ(r.rc, 0) << r.err;
  const gguf::File got = gguf::File::open(out);

  // Every tensor: name, type, shape, order and bytes.
  ASSERT_EQ(got.tensors().size(), ref.tensors().size());
  for (size_t i = 0; i < ref.tensors().size(); ++i) {
    const auto& a = got.tensors()[i];
    const auto& b = ref.tensors()[i];
    ASSERT_EQ(a.name, b.name) << "tensor " << i;
    EXPECT_EQ(a.type, b.type) << a.name;
    EXPECT_EQ(join_ne(a), join_ne(b)) << a.name;
    EXPECT_EQ(sha256_hex(got.tensor_data(a)), sha256_hex(ref.tensor_data(b))) << a.name;
  }
  // Every metadata line of llama.cpp's listing (keys, types, values, order, header sizes).
  const RunResult info = run_imq("info --tsv " + out);
  ASSERT_EQ(info.rc, 0) << info.err;
  const auto gl = lines(info.out), rl = lines(read_all(info_tsv));
  ASSERT_EQ(gl.size(), rl.size());
  for (size_t i = 0; i < rl.size(); ++i) EXPECT_EQ(gl[i], rl[i]) << "line " << i;
  // The whole vocabulary, not only the listing's first eight entries.
  for (const char* k : {"tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type"})
    EXPECT_TRUE(got.get(k) == ref.get(k)) << k;
}

// The folder as a model path: loaded in memory as its BF16 GGUF, and its tokenizer gives
// llama-tokenize's ids on the shipped GGUF.
TEST_P(HfArchs, FolderAsModelPath) {
  const std::string arch = GetParam();
  IMQ_NEED_SHARED(gguf_path, "models/archs/" + arch + "-bf16.gguf");
  IMQ_NEED_SHARED(spm, "models/hf/dense-spm4k/tokenizer.model");
  IMQ_NEED_SHARED(text, "data/wiki.test.head100.txt");
  IMQ_NEED_SHARED(tokens, "reference/archs/" + arch + "/tokens-wiki100.txt");
  const gguf::File ref = gguf::File::open(gguf_path);
  TempDir tmp;
  const fs::path dir = tmp.path() / arch;
  write_folder(ref, dir, spm);
  const gguf::File m = hf::open_model_file(dir.string());
  ASSERT_EQ(m.tensors().size(), ref.tensors().size());
  for (size_t i = 0; i < ref.tensors().size(); ++i) {
    EXPECT_EQ(m.tensors()[i].name, ref.tensors()[i].name);
    EXPECT_TRUE(std::ranges::equal(m.tensor_data(m.tensors()[i]), ref.tensor_data(ref.tensors()[i])))
        << ref.tensors()[i].name;
  }
  const RunResult r = run_imq("tokenize -m " + dir.string() + " -f " + text + " --ids --log-disable");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, read_all(tokens));
}

INSTANTIATE_TEST_SUITE_P(All, HfArchs, ::testing::Values("qwen2", "qwen3", "qwen3moe", "gemma3"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace imq::test
