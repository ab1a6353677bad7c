// A byte-level BPE tokenizer.json (Hugging Face tokenizers) as the converter's GPT-2 vocabulary:
//
//   { "model": { "type": "BPE", "vocab": { "<token>": id, ... }, "merges": ["a b", ...] or [["a", "b"], ...] },
//     "added_tokens": [ { "id": n, "content": "<|endoftext|>", "special": true, ... }, ... ],
//     "pre_tokenizer": { "type": "ByteLevel" } or
//                      { "type": "Sequence", "pretokenizers": [ { "type": "Split", "pattern": { "Regex": "..." } },
//                                                              { "type": "ByteLevel", "use_regex": false } ] } }
//
// Tokens are listed by id up to config.json's vocab_size (ids no token has become [PADn],
// unused); added tokens are control tokens when special (or looking special), else
// user-defined; the rest normal. Merges given as pairs are joined with a space, a space inside
// a part written as U+0120, as gguf-py does.
//
// tokenizer.ggml.pre: the converter names it by hashing what transformers' tokenizer makes of
// a check text, which needs the Python tokenizers library. Here it is named from the
// pre-tokenizer instead: the split regexes of GPT-2, Llama 3 and Qwen2 map to "gpt-2",
// "llama-bpe" and "qwen2" (the names llama.cpp gives those tokenizers); any other is an error
// rather than a guess.
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "hf/config.h"
#include "hf/json_error.h"
#include "hf/tokenizer.h"
#include "imq/error.h"

namespace imq::hf {

namespace {

using nlohmann::json;

constexpr int32_t kNormal = 1, kControl = 3, kUserDefined = 4, kUnused = 5;

// The split regexes of the tokenizer.json files llama.cpp's converter knows by hash, and the
// tokenizer.ggml.pre it writes for them.
struct KnownSplit {
  const char* regex;
  const char* pre;
};
constexpr KnownSplit kKnownSplits[] = {
    // Llama 3
    {R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
     "llama-bpe"},
    // Qwen2 (and Qwen2.5 / Qwen3): digits one by one
    {R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
     "qwen2"},
    // GPT-2's own regex written out
    {R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)", "gpt-2"},
};

std::string type_of(const json& j) {
  return j.is_object() && j.contains("type") && j["type"].is_string() ? j["type"].get<std::string>() : "";
}

// The pre-tokenizer's name, or an error naming the file and what was found.
std::string pre_name(const json& tj, const std::string& path) {
  if (!tj.contains("pre_tokenizer") || tj["pre_tokenizer"].is_null())
    throw_error("{}: no pre_tokenizer (expected a byte-level one: ByteLevel, or Split + ByteLevel)", path);
  const json& pt = tj["pre_tokenizer"];
  const std::string type = type_of(pt);
  if (type == "ByteLevel") {
    if (pt.contains("use_regex") && pt["use_regex"].is_boolean() && !pt["use_regex"].get<bool>())
      throw_error("{}: ByteLevel pre_tokenizer without its regex splits nothing (not supported)", path);
    return "gpt-2";  // ByteLevel's built-in regex is GPT-2's
  }
  if (type == "Metaspace")
    throw_error("{}: a SentencePiece-style (Metaspace) tokenizer.json is not supported; add its tokenizer.model", path);
  if (type != "Sequence" || !pt.contains("pretokenizers") || !pt["pretokenizers"].is_array())
    throw_error("{}: pre_tokenizer of type {} is not supported (expected ByteLevel, or Split + ByteLevel)", path,
                json(type).dump());
  std::string regex;
  bool byte_level = false;
  for (const json& p : pt["pretokenizers"]) {
    const std::string t = type_of(p);
    if (t == "ByteLevel") {
      byte_level = true;
    } else if (t == "Split" && regex.empty() && p.contains("pattern") && p["pattern"].is_object() &&
               p["pattern"].contains("Regex") && p["pattern"]["Regex"].is_string()) {
      regex = p["pattern"]["Regex"].get<std::string>();
    } else {
      throw_error("{}: pre_tokenizer step {} is not supported (expected one Split regex and ByteLevel)", path,
                  json(t).dump());
    }
  }
  if (!byte_level || regex.empty())
    throw_error("{}: pre_tokenizer is not a Split regex followed by ByteLevel (not supported)", path);
  for (const auto& k : kKnownSplits)
    if (regex == k.regex) return k.pre;
  throw_error("{}: pre_tokenizer split regex {} is not one imq can name for llama.cpp (known: Llama 3, Qwen2, "
              "GPT-2)",
              path, json(regex).dump());
}

// One merge as gguf-py writes it.
std::string merge_string(const json& m, size_t i, const std::string& path) {
  if (m.is_string()) {
    const std::string s = m.get<std::string>();
    const size_t sp = s.find(' ');
    if (sp == std::string::npos || sp == 0 || sp + 1 == s.size() || s.find(' ', sp + 1) != std::string::npos)
      throw_error("{}: merge {} {} is not two tokens separated by one space", path, i, m.dump());
    return s;
  }
  if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
    auto enc = [](std::string s) {
      for (size_t p; (p = s.find(' ')) != std::string::npos;) s.replace(p, 1, "\xc4\xa0");  // U+0120
      return s;
    };
    return enc(m[0].get<std::string>()) + " " + enc(m[1].get<std::string>());
  }
  throw_error("{}: merge {} {} is neither \"a b\" nor [\"a\", \"b\"]", path, i, m.dump());
}

}  // namespace

void read_bpe_vocab(const std::string& dir, const HfConfig& config, HfVocab& v) {
  const std::string path = (std::filesystem::path(dir) / "tokenizer.json").string();
  json tj;
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw_error("{}: cannot open", path);
    std::stringstream ss;
    ss << in.rdbuf();
    try {
      tj = json::parse(ss.str());
    } catch (const json::parse_error& e) {
      throw_error("{}: not valid JSON ({})", path, json_error(e));
    }
  }
  if (!tj.is_object()) throw_error("{}: not a JSON object", path);
  if (!tj.contains("model") || !tj["model"].is_object()) throw_error("{}: missing \"model\" object", path);
  const json& model = tj["model"];
  const std::string mtype = type_of(model);
  if (mtype != "BPE")
    throw_error("{}: model type {} is not supported (expected \"BPE\")", path, json(mtype).dump());
  if (model.contains("byte_fallback") && model["byte_fallback"].is_boolean() && model["byte_fallback"].get<bool>())
    throw_error("{}: a SentencePiece-style BPE (byte_fallback) tokenizer.json is not supported; add its "
                "tokenizer.model",
                path);
  if (!model.contains("vocab") || !model["vocab"].is_object() || model["vocab"].empty())
    throw_error("{}: model has no \"vocab\" object of token -> id", path);

  // The model's vocabulary: ids 0..n-1, each once.
  const json& vocab = model["vocab"];
  const size_t n_model = vocab.size();
  std::vector<std::string> by_id(n_model);
  std::vector<bool> seen(n_model, false);
  for (const auto& [tok, id] : vocab.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || uint64_t(id.get<int64_t>()) >= n_model)
      throw_error("{}: vocab token {} has id {}, expected ids 0..{} without gaps", path, json(tok).dump(), id.dump(),
                  n_model - 1);
    const size_t i = size_t(id.get<int64_t>());
    if (seen[i])
      throw_error("{}: vocab id {} is given to both {} and {}", path, i, json(by_id[i]).dump(), json(tok).dump());
    seen[i] = true;
    by_id[i] = tok;
  }

  // Added tokens (their ids may extend the vocabulary).
  std::map<size_t, std::pair<std::string, bool>> added;  // id -> (content, special)
  if (tj.contains("added_tokens") && !tj["added_tokens"].is_null()) {
    if (!tj["added_tokens"].is_array()) throw_error("{}: added_tokens is not a list", path);
    for (const json& at : tj["added_tokens"]) {
      if (!at.is_object() || !at.contains("id") || !at["id"].is_number_integer() || at["id"].get<int64_t>() < 0 ||
          !at.contains("content") || !at["content"].is_string())
        throw_error("{}: added token {} has no id >= 0 and content", path, at.dump());
      const size_t id = size_t(at["id"].get<int64_t>());
      const std::string content = at["content"].get<std::string>();
      if (id < n_model && by_id[id] != content)
        throw_error("{}: added token {} has id {}, which the vocab gives to {}", path, json(content).dump(), id,
                    json(by_id[id]).dump());
      const bool special = at.contains("special") && at["special"].is_boolean() && at["special"].get<bool>();
      added[id] = {content, special};
    }
  }

  const size_t n_vocab = size_t(config.vocab_size);
  const size_t top = std::max(n_model, added.empty() ? size_t(0) : added.rbegin()->first + 1);
  if (top > n_vocab)
    throw_error("{}: token id {} is past config.json's vocab_size {}", path, top - 1, n_vocab);
  v.model = "gpt2";
  v.pre = pre_name(tj, path);
  v.tokens.assign(n_vocab, "");
  v.types.assign(n_vocab, kUnused);
  v.scores.clear();
  for (size_t i = 0; i < n_vocab; ++i) {
    if (auto it = added.find(i); it != added.end()) {
      std::string t = it->second.first;
      if (it->second.second || looks_special(t)) {
        v.types[i] = kControl;
      } else {
        for (size_t p; (p = t.find("\xe2\x96\x81")) != std::string::npos;) t.replace(p, 3, " ");
        v.types[i] = kUserDefined;
      }
      v.tokens[i] = t;
    } else if (i < n_model) {
      v.tokens[i] = by_id[i];
      v.types[i] = kNormal;
    } else {
      v.tokens[i] = "[PAD" + std::to_string(i) + "]";
    }
  }

  // Merges: each side and their concatenation must be tokens of the vocabulary.
  if (!model.contains("merges") || !model["merges"].is_array() || model["merges"].empty())
    throw_error("{}: model has no \"merges\" list", path);
  std::set<std::string_view> known;
  for (const auto& t : by_id) known.insert(t);
  v.merges.clear();
  v.merges.reserve(model["merges"].size());
  size_t i = 0;
  for (const json& m : model["merges"]) {
    std::string s = merge_string(m, i, path);
    const size_t sp = s.find(' ');
    const std::string a = s.substr(0, sp), b = s.substr(sp + 1);
    for (const std::string& t : {a, b, a + b})
      if (!known.count(t))
        throw_error("{}: merge {} {} names {}, which is not in the vocab", path, i, json(s).dump(), json(t).dump());
    v.merges.push_back(std::move(s));
    ++i;
  }
}

}  // namespace imq::hf
