// Fuzzes the tokenizers on hostile text: invalid UTF-8, huge runs, special-token text with
// and without parse_special. The vocabularies are real ones from ../shared (SentencePiece
// llama and phi-3, byte-level BPE gpt-2 and deepseek-llm), loaded once at start-up.
// The first input byte picks the vocabulary, the rest is the text; each text is encoded with
// and without parse_special (and the BOS/EOS of add_special), and every id must be a vocabulary
// id whose piece can be rendered.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "imq/error.h"
#include "imq/gguf.h"
#include "imq/tokenizer.h"

namespace {

struct Vocab {
  imq::gguf::File file;
  std::unique_ptr<imq::Tokenizer> tokenizer;
};

// Harness state: libFuzzer calls LLVMFuzzerTestOneInput with no context argument, so the
// vocabularies built once at start-up have to live here (the one static of this kind in imq).
std::vector<Vocab>& vocabs() {
  static std::vector<Vocab> v;
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* env = std::getenv("IMQ_SHARED");
  const std::string shared = env && *env ? env : "../shared";
  for (const char* name : {"llama-spm", "phi-3", "gpt-2", "deepseek-llm"}) {
    const std::string path = shared + "/models/vocab/ggml-vocab-" + name + ".gguf";
    try {
      auto file = imq::gguf::File::open(path);
      auto tok = imq::load_tokenizer(file);
      vocabs().push_back({std::move(file), std::move(tok)});
    } catch (const imq::Error& e) {
      std::fprintf(stderr, "fuzz_tokenizer: cannot load %s (set IMQ_SHARED to the shared folder): %s\n",
                   path.c_str(), e.what());
      std::exit(2);
    }
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const imq::Tokenizer& tok = *vocabs()[data[0] % vocabs().size()].tokenizer;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  for (bool parse_special : {false, true}) {
    try {
      for (int32_t id : tok.encode(text, parse_special, parse_special)) {
        if (id < 0 || id >= tok.n_vocab()) {
          std::fprintf(stderr, "fuzz_tokenizer: id %d outside the vocabulary (%d)\n", id, tok.n_vocab());
          std::abort();
        }
        (void)tok.piece(id);
      }
    } catch (const imq::Error&) {
      // Text the tokenizer refuses with a one-line error is fine.
    }
  }
  return 0;
}
