// imq convert: a Hugging Face model folder to the GGUF llama.cpp's convert_hf_to_gguf.py writes.
#include <cstdio>

#include <CLI/CLI.hpp>

#include "commands.h"
#include "imq/hf.h"

namespace imq::cli {

int cmd_convert(int argc, char** argv) {
  CLI::App app{"convert a Hugging Face model folder (config.json, safetensors, tokenizer.model) to GGUF",
               "imq convert"};
  std::string dir, out, outtype = "f16";
  app.add_option("model_dir", dir, "HF model folder")->required();
  app.add_option("output", out, "output GGUF file")->required();
  app.add_option("--outtype", outtype, "f32, f16, bf16 or auto (f16 if the weights are F16, else bf16)")
      ->check(CLI::IsMember({"f32", "f16", "bf16", "auto"}))->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (!hf::is_model_dir(dir)) {
    std::fprintf(stderr, "imq convert: %s is not a directory (expected an HF model folder)\n", dir.c_str());
    return 1;
  }
  hf::convert(dir, out, hf::ConvertOptions{hf::parse_outtype(outtype)});
  std::printf("wrote %s\n", out.c_str());
  return 0;
}

}  // namespace imq::cli
