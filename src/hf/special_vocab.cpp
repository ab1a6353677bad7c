// gguf-py's SpecialVocab, the rules llama.cpp's converter uses for special token ids and the
// add_bos/add_eos/add_sep flags:
// 1. tokenizer.json (if any): its post_processor says which special tokens a single sequence
//    (and a pair) gets; tokenizer_config.json's <typ>_token strings are looked up among its
//    added_tokens by content; tokenizer_config.json's add_<typ>_token booleans win.
// 2. config.json's <typ>_token_id fill the types still unset.
// A type keeps the first id it is given; ids are written in the order they were set. For a
// SentencePiece vocabulary, ids past the vocabulary are skipped.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "hf/config.h"
#include "hf/json_error.h"
#include "hf/tokenizer.h"
#include "imq/error.h"

namespace imq::hf {

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

json read_json_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw_error("{}: cannot open", p.string());
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return json::parse(ss.str());
  } catch (const json::parse_error& e) {
    throw_error("{}: not valid JSON ({})", p.string(), json_error(e));
  }
}

// An ordered str -> value map (a Python dict).
template <class T>
struct Ordered {
  std::vector<std::pair<std::string, T>> items;
  T* find(const std::string& k) {
    for (auto& [key, v] : items)
      if (key == k) return &v;
    return nullptr;
  }
  void set(const std::string& k, T v) {
    if (T* p = find(k)) *p = v;
    else items.emplace_back(k, v);
  }
};

std::string str_or_empty(const json& j, const char* k) {
  return j.is_object() && j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : "";
}

// The "id" of a template item's SpecialToken ("" when the item is a Sequence).
std::string special_token_of(const json& item) {
  if (!item.is_object() || !item.contains("SpecialToken")) return "";
  return str_or_empty(item["SpecialToken"], "id");
}
std::string sequence_of(const json& item) {
  if (!item.is_object() || !item.contains("Sequence")) return "";
  return str_or_empty(item["Sequence"], "id");
}

struct State {
  Ordered<uint32_t> ids;
  Ordered<bool> add;
  std::vector<std::string> types = {"bos", "eos", "unk", "sep", "pad", "cls", "mask"};
  std::optional<size_t> n_vocab;

  void set_id(const std::string& typ, const json& tid, const std::string& where) {
    if (!tid.is_number_integer()) return;
    const int64_t id = tid.get<int64_t>();
    if (id < 0) throw_error("{}: {} token id is {}, expected an id >= 0", where, typ, id);
    if (n_vocab && size_t(id) >= *n_vocab) return;
    if (id > int64_t(UINT32_MAX)) throw_error("{}: {} token id {} does not fit 32 bits", where, typ, id);
    if (!ids.find(typ)) ids.set(typ, uint32_t(id));
  }
};

// TemplateProcessing / RobertaProcessing as SpecialVocab reads them (its "crude parsing").
void read_post_processor(const json& pp, json& tc, bool have_tc, State& st, const std::string& where) {
  std::string bos = str_or_empty(tc, "bos_token"), cls = str_or_empty(tc, "cls_token");
  std::string eos = str_or_empty(tc, "eos_token"), sep = str_or_empty(tc, "sep_token");
  const json procs = pp.contains("processors") && pp["processors"].is_array() ? pp["processors"] : json::array({pp});
  for (const json& p : procs) {
    const std::string type = str_or_empty(p, "type");
    if (type == "RobertaProcessing") {
      st.add.set("bos", true);
      st.add.set("eos", true);
      st.add.set("sep", true);
      if (cls.empty() && have_tc) {
        cls = p.contains("cls") && p["cls"].is_array() && !p["cls"].empty() && p["cls"][0].is_string()
                  ? p["cls"][0].get<std::string>()
                  : bos;
        tc["cls_token"] = cls;
      }
      if (sep.empty() && have_tc) {
        sep = p.contains("sep") && p["sep"].is_array() && !p["sep"].empty() && p["sep"][0].is_string()
                  ? p["sep"][0].get<std::string>()
                  : eos;
        tc["sep_token"] = sep;
      }
      continue;
    }
    if (type != "TemplateProcessing") continue;
    const json single = p.contains("single") && p["single"].is_array() ? p["single"] : json::array();
    json pair = p.contains("pair") && p["pair"].is_array() ? p["pair"] : json::array();
    std::string first, last;
    if (single.size() > 1) {
      first = special_token_of(single.front());
      if (!first.empty()) {
        if (!have_tc) bos = first;
        st.add.set("bos", first == bos || first == cls);
      }
      last = special_token_of(single.back());
      if (!last.empty()) {
        if (!have_tc) eos = last;
        else if (last != eos)
          throw_error("{}: post_processor's last special token {} is not eos_token {} (not supported)", where,
                      json(last).dump(), json(eos).dump());
        st.add.set("eos", last == eos);
      }
    }
    if (pair.empty()) continue;
    const size_t start = !first.empty() && special_token_of(pair.front()) == first ? 1 : 0;
    size_t stop = pair.size();
    if (!last.empty() && special_token_of(pair.back()) == last) --stop;
    if (start >= stop) continue;
    const json inner(pair.begin() + std::ptrdiff_t(start), pair.begin() + std::ptrdiff_t(stop));
    if (!(sequence_of(inner.front()) == "A" && sequence_of(inner.back()) == "B" && inner.size() > 2)) continue;
    // A [sep] [eos] B: what lies between the two sequences.
    bool add_sep = false;
    const std::string e1 = special_token_of(inner[1]);
    if (!e1.empty() && (e1 == sep || e1 == eos) && last.empty()) add_sep = true;
    if (inner.size() == 4) {
      const std::string e2 = special_token_of(inner[2]);
      if (!e2.empty() && (e2 == sep || e2 == eos)) add_sep = true;
    }
    st.add.set("sep", add_sep);
    if (add_sep && sep.empty() && have_tc) tc["sep_token"] = eos;
  }
}

}  // namespace

std::string special_id_key(const std::string& typ) {
  if (typ == "unk") return "tokenizer.ggml.unknown_token_id";
  if (typ == "sep") return "tokenizer.ggml.seperator_token_id";  // sic, gguf-py's spelling
  if (typ == "pad") return "tokenizer.ggml.padding_token_id";
  return "tokenizer.ggml." + typ + "_token_id";
}

void read_special_vocab(const std::string& dir, const HfConfig& config, HfVocab& v) {
  State st;
  if (v.model == "llama") st.n_vocab = v.tokens.size();
  const fs::path tj_path = fs::path(dir) / "tokenizer.json", tc_path = fs::path(dir) / "tokenizer_config.json";
  json tj, tc;
  const bool have_tj = fs::exists(tj_path), have_tc = fs::exists(tc_path);
  if (have_tj) tj = read_json_file(tj_path);
  if (have_tc) {
    tc = read_json_file(tc_path);
    if (!tc.is_object()) throw_error("{}: not a JSON object", tc_path.string());
  }
  const json added = have_tj && tj.is_object() && tj.contains("added_tokens") && tj["added_tokens"].is_array()
                         ? tj["added_tokens"]
                         : json::array();
  if (have_tj && tj.is_object()) {
    // A cls/sep token stands in for a missing bos/eos.
    if (have_tc) {
      using Alt = std::pair<const char*, const char*>;
      for (const auto& [want, alt] : {Alt{"bos_token", "cls_token"}, Alt{"eos_token", "sep_token"}})
        if (str_or_empty(tc, want).empty() && !str_or_empty(tc, alt).empty()) tc[want] = tc[alt];
    }
    if (tj.contains("post_processor") && tj["post_processor"].is_object())
      read_post_processor(tj["post_processor"], tc, have_tc, st, tj_path.string());
  }
  if (have_tc) {
    if (tc.contains("chat_template") && tc["chat_template"].is_string())
      v.chat_template = tc["chat_template"].get<std::string>();
    for (const std::string& typ : st.types) {
      const std::string ak = "add_" + typ + "_token";
      if (tc.contains(ak) && tc[ak].is_boolean()) st.add.set(typ, tc[ak].get<bool>());
      const std::string tk = typ + "_token";
      if (!tc.contains(tk)) continue;
      std::string content;
      if (tc[tk].is_string()) content = tc[tk].get<std::string>();
      else if (tc[tk].is_object() && tc[tk].contains("content") && tc[tk]["content"].is_string())
        content = tc[tk]["content"].get<std::string>();
      else continue;
      for (const json& at : added)
        if (at.is_object() && str_or_empty(at, "content") == content && at.contains("id")) {
          st.set_id(typ, at["id"], tj_path.string());
          break;
        }
    }
  }
  const std::pair<const char*, std::optional<int64_t>> from_config[] = {
      {"bos", config.bos_id}, {"eos", config.eos_id}, {"unk", config.unk_id}, {"sep", config.sep_id},
      {"pad", config.pad_id}, {"cls", config.cls_id}, {"mask", config.mask_id}};
  for (const auto& [typ, id] : from_config)
    if (id) st.set_id(typ, json(*id), config.path);
  v.special_ids = st.ids.items;
  v.add_special = st.add.items;
}

bool looks_special(const std::string& t) {
  auto starts = [&](std::string_view p) { return std::string_view(t).starts_with(p); };
  auto ends = [&](std::string_view p) { return std::string_view(t).ends_with(p); };
  return t == "<pad>" || t == "<mask>" || t == "<2mass>" || t == "[@BOS@]" || (starts("<|") && ends("|>")) ||
         (starts("<\xef\xbd\x9c") && ends("\xef\xbd\x9c>")) || (starts("<unused") && ends(">"));
}

}  // namespace imq::hf
