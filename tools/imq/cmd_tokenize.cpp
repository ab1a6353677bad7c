// imq tokenize -m MODEL (-p TEXT | -f FILE | --stdin) [--ids] ...: llama-tokenize's output.
//   --ids:   one Python-style list "[1, 2, 3]\n";
//   default: one line per token, "%6d -> '<piece>'".
// Like llama-tokenize: the text is used as is (a file's trailing newline is kept), escapes such
// as \n are processed unless --no-escape, special-token text is parsed unless
// --no-parse-special, and BOS is added when the vocabulary asks for it unless --no-bos.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "commands.h"
#include "imq/hf.h"
#include "common_flags.h"
#include "imq/error.h"
#include "imq/gguf.h"
#include "imq/tokenizer.h"

namespace imq::cli {

namespace {

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw_error("{}: cannot open", path);
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) throw_error("{}: read error", path);
  return ss.str();
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// \n \r \t \' \" \\ and \xHH (exactly two hex digits) become the character; any other
// backslash sequence is kept as it is.
std::string process_escapes(const std::string& in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '\\' || i + 1 >= in.size()) {
      out += in[i];
      continue;
    }
    const char e = in[++i];
    switch (e) {
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case '\'': out += '\''; break;
      case '"': out += '"'; break;
      case '\\': out += '\\'; break;
      case 'x':
        if (i + 2 < in.size() && hex_digit(in[i + 1]) >= 0 && hex_digit(in[i + 2]) >= 0) {
          out += char(hex_digit(in[i + 1]) * 16 + hex_digit(in[i + 2]));
          i += 2;
          break;
        }
        [[fallthrough]];
      default:
        out += '\\';
        out += e;
    }
  }
  return out;
}

}  // namespace

int cmd_tokenize(int argc, char** argv) {
  CLI::App app{"Tokenize text with a GGUF model's vocabulary (output as llama-tokenize)", "imq tokenize"};
  std::string model, prompt, file;
  bool ids = false, use_stdin = false, no_bos = false, no_escape = false, no_parse_special = false;
  bool parse_special = false, log_disable = false, show_count = false;
  app.add_option("-m,--model", model, "GGUF file with a tokenizer")->required();
  auto* p = app.add_option("-p,--prompt", prompt, "text to tokenize");
  auto* f = app.add_option("-f,--file", file, "read the text from a file (as is)");
  auto* s = app.add_flag("--stdin", use_stdin, "read the text from standard input");
  p->excludes(f)->excludes(s);
  f->excludes(s);
  app.add_flag("--ids", ids, "print only the ids, as a Python list [1, 2, 3]");
  app.add_flag("--no-bos", no_bos, "never add BOS, even if the vocabulary asks for it");
  app.add_flag("--no-escape", no_escape, "do not process escapes (\\n, \\t, \\xHH, ...) in the text");
  app.add_flag("--no-parse-special", no_parse_special, "treat special-token text as plain text");
  app.add_flag("--parse-special", parse_special, "parse special-token text as those tokens (the default)");
  app.add_flag("--log-disable", log_disable, "accepted for llama-tokenize compatibility (imq logs nothing here)");
  app.add_flag("--show-count", show_count, "print the number of tokens at the end");
  if (auto rc = parse_llama(app, argc, argv, 1, "llama-tokenize", nullptr)) return *rc;
  if (no_parse_special && parse_special) throw_error("--parse-special and --no-parse-special contradict each other");

  std::string text;
  if (!file.empty()) {
    text = read_file(file);
  } else if (use_stdin) {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else if (p->count() > 0) {
    text = prompt;
  } else {
    throw_error("give the text with -p TEXT, -f FILE or --stdin");
  }
  if (!no_escape) text = process_escapes(text);

  const gguf::File gf = hf::open_model_file(model);
  const std::unique_ptr<Tokenizer> tok = load_tokenizer(gf);
  const bool add_bos = tok->add_bos() && !no_bos;
  const std::vector<int32_t> tokens = tok->encode(text, add_bos, !no_parse_special);

  std::string out;
  if (ids) {
    out += '[';
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0) out += ", ";
      out += std::to_string(tokens[i]);
    }
    out += "]\n";
  } else {
    for (int32_t id : tokens) {
      std::string piece = tok->piece(id);
      piece.resize(std::min(piece.size(), piece.find('\0')));  // printed as a C string
      out += fmt::format("{:6d} -> '{}'\n", id, piece);
    }
  }
  if (show_count) out += fmt::format("Total number of tokens: {}\n", tokens.size());
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

}  // namespace imq::cli
