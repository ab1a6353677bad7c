// The seed documents' own llama-imatrix / llama-quantize commands (../shared/seeds/*.txt,
// read here at test time, never copied), run as written: the binaries are the multi-call
// aliases linked into the working directory, and the files they read are put there under the
// names the documents use (the shared tiny model stories260K, a 4 KB piece of the shared
// calibration text, and an imatrix collected here for inputs no earlier command wrote).
// Each command must exit 0 and write the files it names, except where the table below says
// what imq does instead, and why.
//
// Reading the documents as they mean it: trailing "# ..." comments are dropped, also after a
// continuation backslash (where a shell would end the command); a usage synopsis ("[-o imatrix.dat] ...")
// runs twice, with no optional part and with every optional part (the "..." dropped).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "dropin_util.h"

namespace imq::test {
namespace {

namespace fs = std::filesystem;

enum class Outcome {
  kRuns,          // exit 0, named outputs written
  kRunsFallback,  // same, and llama-quantize's fallback rules replace a type the rows do not fit
  kRefuses,       // exit 1 with one error line: llama.cpp's tool aborts there too
};

// What imq does with a seed command that asks for something the tiny model or text cannot give.
struct Expectation {
  const char* match;  // a substring of the command
  Outcome outcome;
  const char* why;
  const char* error = "";  // kRefuses: what the error line says
};
const Expectation kExpected[] = {
    {"--output-tensor-type q5_k", Outcome::kRefuses,
     "the tiny model's rows hold 64 values, q5_K and Q3_HIFI blocks 256; llama-quantize applies "
     "--output-tensor-type/--token-embedding-type after its fallback rules, so it aborts on such a "
     "row, and imq refuses with one line naming the tensor",
     "tensor output.weight: row length 64 is not a multiple of 256 as q5_K needs"},
    {"--chunk 123", Outcome::kRefuses,
     "the full synopsis skips 123 chunks of 512 tokens, more than the 4 KB text holds; "
     "llama-imatrix stops there too, imq with one line",
     "--chunk 123: the text has"},
    {"Q3_HIFI", Outcome::kRunsFallback,
     "rows of 64 values do not fit Q3_HIFI's 256-value blocks: the fallback rules pick another "
     "type for those tensors (warnings on stderr, the count on stdout)"},
    {"q4_k_m", Outcome::kRunsFallback, "rows of 64 values do not fit K-quant blocks: fallback as llama-quantize"},
};

struct SeedCommand {
  std::string text;  // one line, as run
  std::string tool;  // llama-imatrix or llama-quantize
  std::vector<std::string> args;
};

std::vector<std::string> split_words(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> v;
  for (std::string w; in >> w;) v.push_back(w);
  return v;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& w : v) s += (s.empty() ? "" : " ") + w;
  return s;
}

std::vector<SeedCommand> make_commands(const std::string& line) {
  std::vector<std::string> variants;
  if (line.find(" [") == std::string::npos) {
    variants.push_back(line);
  } else {  // a synopsis: without, and with, the optional parts
    variants.push_back(std::regex_replace(line, std::regex(R"(\s*\[[^\]]*\])"), ""));
    variants.push_back(std::regex_replace(std::regex_replace(line, std::regex(R"(\[|\]|\.\.\.)"), ""),
                                          std::regex(R"(\s+)"), " "));
  }
  std::vector<SeedCommand> out;
  for (const auto& v : variants) {
    SeedCommand c;
    c.args = split_words(v);
    c.tool = fs::path(c.args.at(0)).filename().string();
    c.args.erase(c.args.begin());
    c.text = join(split_words(v));
    out.push_back(std::move(c));
  }
  return out;
}

// The llama-imatrix / llama-quantize commands of the fenced code blocks of one document.
std::vector<SeedCommand> extract_commands(const std::string& doc) {
  std::vector<SeedCommand> out;
  std::istringstream in(doc);
  bool fenced = false;
  std::string pending;
  // A "# ..." after a blank ends a line's code (after a continuation backslash too).
  const std::regex comment(R"(\s+#.*$)");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("```", 0) == 0) {
      fenced = !fenced;
      pending.clear();
      continue;
    }
    if (!fenced) continue;
    if (line.find('#') != 0) line = std::regex_replace(line, comment, "");
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
    const bool continued = !line.empty() && line.back() == '\\';
    if (continued) line.pop_back();
    pending += line + " ";
    if (continued) continue;
    const auto words = split_words(pending);
    pending.clear();
    if (words.empty()) continue;
    const std::string tool = fs::path(words[0]).filename().string();
    if (tool != "llama-imatrix" && tool != "llama-quantize") continue;
    for (auto& c : make_commands(join(words))) out.push_back(std::move(c));
  }
  return out;
}

// The values after each `flag` in args.
std::vector<std::string> values_of(const std::vector<std::string>& args, const std::string& flag) {
  std::vector<std::string> v;
  for (size_t i = 0; i + 1 < args.size(); ++i)
    if (args[i] == flag) v.push_back(args[i + 1]);
  return v;
}

// llama-quantize's positional arguments (options with a value skipped).
std::vector<std::string> quantize_positionals(const std::vector<std::string>& args) {
  std::vector<std::string> pos;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--pure" || a == "--leave-output-tensor" || a == "--allow-requantize" || a == "--dry-run") continue;
    if (a.rfind("--", 0) == 0) {
      ++i;
      continue;
    }
    pos.push_back(a);
  }
  return pos;
}

struct Files {
  std::vector<std::string> models, texts, imatrices, outputs;
};

Files files_of(const SeedCommand& c) {
  Files f;
  if (c.tool == "llama-imatrix") {
    f.models = values_of(c.args, "-m");
    f.texts = values_of(c.args, "-f");
    f.imatrices = values_of(c.args, "--in-file");
    auto o = values_of(c.args, "-o");
    const bool stats = std::find(c.args.begin(), c.args.end(), "--show-statistics") != c.args.end();
    if (o.empty() && !f.texts.empty()) o.push_back("imatrix.gguf");  // llama-imatrix's default
    if (!stats) f.outputs = {o.empty() ? std::string() : o.back()};
    if (!f.outputs.empty() && f.outputs[0].empty()) f.outputs.clear();
  } else {
    f.imatrices = values_of(c.args, "--imatrix");
    const auto pos = quantize_positionals(c.args);
    if (!pos.empty()) f.models.push_back(pos[0]);
    if (pos.size() >= 3) f.outputs.push_back(pos[1]);
  }
  return f;
}

const Expectation* expectation_for(const SeedCommand& c) {
  for (const auto& e : kExpected)
    if (c.text.find(e.match) != std::string::npos) return &e;
  return nullptr;
}

void place(const fs::path& dir, const std::string& name, const fs::path& from, bool link) {
  const fs::path to = dir / name;
  if (fs::exists(to)) return;
  fs::create_directories(to.parent_path());
  if (link) fs::create_symlink(from, to);
  else fs::copy_file(from, to);
}

TEST(SeedCommands, RunAsWritten) {
  const fs::path seeds = shared_root() / "seeds";
  IMQ_NEED_SHARED(model, "models/stories260K-f16.gguf");
  IMQ_NEED_SHARED(text, "data/calibration_datav3_small.txt");
  if (!fs::is_directory(seeds)) {
    if (shared_required()) FAIL() << "missing shared folder: seeds";
    GTEST_SKIP() << "shared data not found: seeds (set IMQ_SHARED)";
  }
  std::vector<fs::path> docs;
  for (const auto& e : fs::directory_iterator(seeds))
    if (e.path().extension() == ".txt") docs.push_back(e.path());
  std::sort(docs.begin(), docs.end());

  // Shared inputs: a 4 KB text, and imatrices (GGUF and .dat) for inputs no command wrote.
  TempDir fixtures;
  {
    std::ofstream t(fixtures.file("text.txt"), std::ios::binary);
    t << read_all(text).substr(0, 4096);
  }
  const auto fx = run_in(fixtures.path(), imq_path() + " imatrix -m " + model +
                                              " -f text.txt -o fixture.gguf --chunks 2 -lv 0 --no-ppl && " +
                                              imq_path() + " imatrix convert fixture.gguf -o fixture.dat");
  ASSERT_EQ(fx.rc, 0) << fx.err;

  size_t n_commands = 0;
  for (const auto& doc : docs) {
    const auto commands = extract_commands(read_all(doc.string()));
    TempDir work;
    link_aliases(work.path());
    for (size_t i = 0; i < commands.size(); ++i) {
      const SeedCommand& c = commands[i];
      const std::string where = doc.filename().string() + " #" + std::to_string(i + 1) + ": " + c.text;
      const Files f = files_of(c);
      for (const auto& m : f.models) place(work.path(), m, model, true);
      for (const auto& t : f.texts) place(work.path(), t, fixtures.file("text.txt"), true);
      for (const auto& m : f.imatrices)
        place(work.path(), m, fixtures.file(m.ends_with(".dat") ? "fixture.dat" : "fixture.gguf"), false);
      for (const auto& o : f.outputs) {
        fs::create_directories((work.path() / o).parent_path());
        fs::remove(work.path() / o);
      }
      const Expectation* e = expectation_for(c);
      const Outcome want = e ? e->outcome : Outcome::kRuns;
      std::cout << "[ seed    ] " << where << "\n             -> "
                << (want == Outcome::kRefuses ? "refused: " : want == Outcome::kRunsFallback ? "runs, with fallback: " : "runs")
                << (e ? e->why : "") << "\n";
      const RunResult r = run_in(work.path(), c.text);
      ++n_commands;
      if (want == Outcome::kRefuses) {
        // One error line, the last (info lines the command printed before it may precede it).
        const auto err = lines_of(r.err);
        EXPECT_EQ(r.rc, 1) << where << "\n" << r.err;
        const auto is_error = [](const std::string& l) { return l.find(": error: ") != std::string::npos; };
        EXPECT_EQ(std::count_if(err.begin(), err.end(), is_error), 1) << where << "\n" << r.err;
        EXPECT_TRUE(!err.empty() && err.back().rfind("imq ", 0) == 0 && err.back().find(e->error) != std::string::npos)
            << where << "\n" << r.err;
        continue;
      }
      EXPECT_EQ(r.rc, 0) << where << "\n" << r.err;
      for (const auto& o : f.outputs)
        EXPECT_GT(fs::exists(work.path() / o) ? fs::file_size(work.path() / o) : 0u, 0u) << where << ": no " << o;
      if (want == Outcome::kRunsFallback) {
        EXPECT_NE(r.err.find("falling back"), std::string::npos) << where;
        EXPECT_NE(r.out.find("required fallback quantization"), std::string::npos) << where;
      }
      if (std::find(c.args.begin(), c.args.end(), "-ngl") != c.args.end()) {
        EXPECT_NE(r.err.find("imq: note: -ngl ignored"), std::string::npos) << where;
      }
    }
  }
  EXPECT_GE(n_commands, 14u);  // the three documents hold this many (a synopsis counts twice)
}

TEST(SeedCommands, ExtractionReadsContinuationsAndComments) {
  const auto c = extract_commands(
      "text\n```bash\n# a comment\n./llama-imatrix \\\n    -m a.gguf \\      # the model\n"
      "    --chunks 3\nmake llama-imatrix\n```\n./llama-quantize a b q4_0\n"
      "```\nllama-quantize [--pure] in.gguf out.gguf [q4_0 ...]\n```\n");
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0].text, "./llama-imatrix -m a.gguf --chunks 3");
  EXPECT_EQ(c[1].text, "llama-quantize in.gguf out.gguf");
  EXPECT_EQ(c[2].text, "llama-quantize --pure in.gguf out.gguf q4_0");
}

}  // namespace
}  // namespace imq::test
