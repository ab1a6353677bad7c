// Vocabulary from GGUF metadata (tokenizer.ggml.*), with llama.cpp's defaults:
//   model "llama" (SentencePiece): bos 1, eos 2, unk 0, add_bos true, add_space_prefix true;
//   model "gpt2" (byte-level BPE): bos = eos = 11, add_bos false unless the pre-tokenizer
//   says otherwise, no space prefix; merges required.
// Explicit keys override the defaults; a special-token id outside the vocabulary is ignored.
#include "imq/error.h"
#include "imq/gguf.h"
#include "model/tokenizer/pretokenizer.h"
#include "model/tokenizer/vocab.h"

namespace imq::tok {

namespace {

using gguf::Value;
using gguf::ValueType;

const gguf::Array& array_of(const gguf::File& f, std::string_view key, ValueType elem) {
  const Value& v = f.get(key);
  if (v.type != ValueType::ARRAY)
    throw_error("{}: key {} has type {}, expected ARRAY", f.path(), key, gguf::value_type_name(v.type));
  const gguf::Array& a = v.as_array();
  if (a.elem != elem)
    throw_error("{}: key {} is an array of {}, expected {}", f.path(), key, gguf::value_type_name(a.elem),
                gguf::value_type_name(elem));
  return a;
}

std::optional<bool> find_bool(const gguf::File& f, std::string_view key) {
  const Value* v = f.find(key);
  if (!v) return std::nullopt;
  if (v->type != ValueType::BOOL)
    throw_error("{}: key {} has type {}, expected BOOL", f.path(), key, gguf::value_type_name(v->type));
  return std::get<bool>(v->data);
}

void read_special_id(const gguf::File& f, std::string_view key, int32_t n_tokens, int32_t& id) {
  const std::optional<int64_t> v = f.find_int(key);
  if (!v) return;
  if (*v >= 0 && *v < n_tokens) id = int32_t(*v);  // llama.cpp warns and keeps its default
}

}  // namespace

Vocab load_vocab(const gguf::File& f) {
  Vocab v;
  const std::string model = f.get_string("tokenizer.ggml.model");
  if (model == "llama") {
    v.type = VocabType::SPM;
  } else if (model == "gpt2") {
    v.type = VocabType::BPE;
  } else {
    throw_error("{}: tokenizer.ggml.model '{}' is not supported (expected 'llama' or 'gpt2')", f.path(), model);
  }
  if (const Value* name = f.find("general.name"); name && name->type == ValueType::STRING)
    v.model_name = name->as_string();

  const gguf::Array& tokens = array_of(f, "tokenizer.ggml.tokens", ValueType::STRING);
  const size_t n = tokens.items.size();
  if (n == 0) throw_error("{}: tokenizer.ggml.tokens is empty", f.path());
  if (n > size_t(INT32_MAX)) throw_error("{}: tokenizer.ggml.tokens has {} entries", f.path(), n);
  v.tokens.reserve(n);
  for (const Value& t : tokens.items) v.tokens.push_back(t.as_string());

  if (f.find("tokenizer.ggml.scores")) {
    const gguf::Array& a = array_of(f, "tokenizer.ggml.scores", ValueType::FLOAT32);
    if (a.items.size() != n)
      throw_error("{}: tokenizer.ggml.scores has {} entries, expected {}", f.path(), a.items.size(), n);
    v.scores.reserve(n);
    for (const Value& s : a.items) v.scores.push_back(std::get<float>(s.data));
  }
  if (f.find("tokenizer.ggml.token_type")) {
    const gguf::Array& a = array_of(f, "tokenizer.ggml.token_type", ValueType::INT32);
    if (a.items.size() != n)
      throw_error("{}: tokenizer.ggml.token_type has {} entries, expected {}", f.path(), a.items.size(), n);
    v.attrs.reserve(n);
    for (const Value& t : a.items) v.attrs.push_back(attr_of_type(std::get<int32_t>(t.data)));
  }

  PreTokenizerSpec pre;
  if (v.type == VocabType::SPM) {
    v.bos = 1;
    v.eos = 2;
    v.unk = 0;
    v.add_bos = true;
    v.add_space_prefix = true;
  } else {
    const gguf::Array& merges = array_of(f, "tokenizer.ggml.merges", ValueType::STRING);
    v.merges.reserve(merges.items.size());
    for (const Value& m : merges.items) v.merges.push_back(m.as_string());
    if (const Value* p = f.find("tokenizer.ggml.pre")) {
      if (p->type != ValueType::STRING)
        throw_error("{}: key tokenizer.ggml.pre has type {}, expected STRING", f.path(),
                    gguf::value_type_name(p->type));
      v.pre = p->as_string();
    }
    try {
      pre = pre_tokenizer_spec(v.pre);
    } catch (const Error& e) {
      throw_error("{}: tokenizer.ggml.pre: {}", f.path(), e.what());
    }
    v.bos = 11;
    v.eos = 11;
    v.add_bos = pre.add_bos;
    v.ignore_merges = pre.ignore_merges;
    v.add_space_prefix = false;
  }

  const int32_t nt = int32_t(n);
  if (pre.no_bos) v.bos = Vocab::kNone;
  read_special_id(f, "tokenizer.ggml.bos_token_id", nt, v.bos);
  read_special_id(f, "tokenizer.ggml.eos_token_id", nt, v.eos);
  read_special_id(f, "tokenizer.ggml.eot_token_id", nt, v.eot);
  read_special_id(f, "tokenizer.ggml.eom_token_id", nt, v.eom);
  read_special_id(f, "tokenizer.ggml.unknown_token_id", nt, v.unk);
  if (v.bos >= nt) v.bos = Vocab::kNone;
  if (v.eos >= nt) v.eos = Vocab::kNone;
  if (v.unk >= nt) v.unk = Vocab::kNone;

  if (auto b = find_bool(f, "tokenizer.ggml.add_space_prefix")) v.add_space_prefix = *b;
  if (auto b = find_bool(f, "tokenizer.ggml.add_bos_token")) v.add_bos = *b;
  if (auto b = find_bool(f, "tokenizer.ggml.add_eos_token")) v.add_eos = *b;

  try {
    finalize_vocab(v);
  } catch (const Error& e) {
    throw_error("{}: {}", f.path(), e.what());
  }
  return v;
}

}  // namespace imq::tok
