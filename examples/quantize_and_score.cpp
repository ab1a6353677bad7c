// Using libimq from another program: quantize a GGUF model with an importance matrix, then
// score both models on a text (perplexity). Built inside the tree and by examples/CMakeLists.txt
// against an installed imq (find_package(imq)).
//
//   quantize_and_score MODEL.gguf IMATRIX.gguf TEXT OUT.gguf [TYPE]
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "imq/error.h"
#include "imq/eval.h"
#include "imq/gguf.h"
#include "imq/model.h"
#include "imq/quantize.h"
#include "imq/tokenizer.h"

namespace {

double perplexity(const std::string& model_path, const std::string& text) {
  auto model = imq::model::Model::load(model_path);
  auto tok = imq::load_tokenizer(model->file());
  const auto tokens = tok->encode(text, true, false);
  imq::eval::ChunkOptions co;
  co.n_ctx = 128;
  co.n_chunks = 4;
  co.bos = tok->bos();
  imq::model::SessionOptions so;
  so.n_ctx = co.n_ctx;
  so.n_ubatch = co.n_ctx;
  imq::model::Session session(*model, so);
  return imq::eval::perplexity(session, tokens, co).ppl();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s MODEL.gguf IMATRIX.gguf TEXT OUT.gguf [TYPE]\n", argv[0]);
    return 2;
  }
  try {
    const std::string model_path = argv[1], imatrix = argv[2], out = argv[4];
    std::ifstream in(argv[3], std::ios::binary);
    if (!in) throw imq::Error(std::string(argv[3]) + ": cannot open");
    std::stringstream text;
    text << in.rdbuf();

    imq::quantize::Options opt;
    opt.ftype = imq::quantize::parse_ftype(argc > 5 ? argv[5] : "Q4_K_M").ftype;
    opt.imatrix_path = imatrix;
    const auto file = imq::gguf::File::open(model_path);
    const auto plan = imq::quantize::make_plan(file, opt);
    imq::quantize::write_quantized(file, plan, out, 2);
    std::printf("quantized %s -> %s (%.2f MiB)\n", model_path.c_str(), out.c_str(),
                double(plan.file_size) / (1 << 20));
    const double base = perplexity(model_path, text.str()), q = perplexity(out, text.str());
    std::printf("perplexity %.4f -> %.4f\n", base, q);
    return q > 0 ? 0 : 1;
  } catch (const imq::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
