// Fuzzes the GGUF reader: header, metadata, tensor table, alignment, data bounds. A file the
// reader accepts is then used as its callers use it: every value read through the typed
// accessors, every tensor's data touched, and its tokenizer metadata (tokenizer.ggml.*)
// built into a tokenizer that encodes a short text.
#include <cstdint>
#include <vector>

#include "imq/error.h"
#include "imq/gguf.h"
#include "imq/tokenizer.h"

namespace {

void use_value(const imq::gguf::Value& v) {
  (void)imq::gguf::value_type_name(v.type);
  try {
    if (v.type == imq::gguf::ValueType::STRING) (void)v.as_string().size();
    else if (v.type == imq::gguf::ValueType::ARRAY) for (const auto& item : v.as_array().items) use_value(item);
    else (void)(v.as_int() + int64_t(v.as_double() != 0));
  } catch (const imq::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const imq::gguf::File f = imq::gguf::File::from_memory("fuzz.gguf", std::vector<uint8_t>(data, data + size));
    for (const auto& kv : f.kvs()) {
      use_value(kv.value);
      try {
        (void)f.find_int(kv.key);
      } catch (const imq::Error&) {
      }
      try {
        (void)f.find_float(kv.key);
      } catch (const imq::Error&) {
      }
    }
    volatile uint8_t sink = 0;
    for (const auto& t : f.tensors()) {
      const auto bytes = f.tensor_data(f.tensor(t.name));
      if (!bytes.empty()) sink = sink ^ bytes.front() ^ bytes.back();
      (void)(t.n_elements() + t.n_rows());
    }
    if (f.find("tokenizer.ggml.model")) {
      try {
        const auto tok = imq::load_tokenizer(f);
        for (int32_t id : tok->encode("Hello world, <s> 123 \xe2\x96\x81x", true, true))
          if (id >= 0 && id < tok->n_vocab()) (void)tok->piece(id);
      } catch (const imq::Error&) {
      }
    }
  } catch (const imq::Error&) {
    // A rejected file: the one-line error is the expected outcome.
  }
  return 0;
}
