// In-situ quantization (imq/insitu.h): the one-call pipeline writes exactly what `imq imatrix`
// then `imq quantize` write from the same inputs, writes nothing unless asked, and the model it
// holds generates as the saved file does.
#include <gtest/gtest.h>

#include <filesystem>

#include "imq/error.h"
#include "imq/insitu.h"
#include "imq/tokenizer.h"
#include "test_util.h"
#include "test_util_impl.h"

namespace imq::test {
namespace {

std::string source_file(const char* rel) { return std::string(IMQ_SOURCE_DIR) + "/" + rel; }

TEST(InSitu, OneCallEqualsImatrixThenQuantize) {
  TempDir dir;
  const std::string model = dir.file("m.gguf"), text = source_file("README.md");
  ASSERT_EQ(run_imq("synth -o " + model + " --n-embd 256 --n-ff 512 --n-layer 2 --vocab 512").rc, 0);
  const std::string im = dir.file("i.gguf"), q_cli = dir.file("q_cli.gguf"), q_run = dir.file("q_run.gguf");
  RunResult r = run_imq("imatrix -m " + model + " -f " + text + " -c 128 --chunks 4 -o " + im);
  ASSERT_EQ(r.rc, 0) << r.err;
  r = run_imq("quantize --pure --imatrix " + im + " " + model + " " + q_cli + " Q4_K_M 2");
  ASSERT_EQ(r.rc, 0) << r.err;
  const std::string im_cli = read_all(im);

  const auto files_before = std::distance(std::filesystem::directory_iterator(dir.path()), {});
  insitu::Options o;
  o.isq = "Q4K";
  o.calibration_file = text;
  o.calibration_ctx = 128;
  o.calibration_chunks = 4;
  o.n_threads = 2;
  auto runner = insitu::Runner::build(model, o);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), files_before)
      << "the runner wrote a file nobody asked for";
  ASSERT_NE(runner->imatrix(), nullptr);
  EXPECT_EQ(runner->imatrix()->chunk_count, 4u);

  runner->save_imatrix(im);  // same path: the quantized file's metadata names it
  EXPECT_TRUE(read_all(im) == im_cli) << "imatrix differs from imq imatrix's";
  runner->save_gguf(q_run);
  EXPECT_TRUE(read_all(q_run) == read_all(q_cli)) << "quantized model differs from imq quantize's";

  // The model in memory is the saved one: greedy continuations agree.
  eval::SamplingOptions greedy;
  greedy.temp = 0;
  const std::string prompt = "The model";
  const std::string in_memory = runner->generate(prompt, 12, greedy);
  auto saved = model::Model::load(q_run);
  auto tok = load_tokenizer(saved->file());
  const auto ids = tok->encode(prompt, true, true);
  model::SessionOptions so;
  so.n_ctx = int64_t(ids.size()) + 12;
  so.n_ubatch = std::min<int64_t>(512, so.n_ctx);
  so.n_threads = 2;
  model::Session session(*saved, so);
  eval::GenerateOptions g;
  g.n_predict = 12;
  g.sampling = greedy;
  g.is_eog = [&](int32_t id) { return tok->is_eog(id); };
  std::string from_file;
  eval::generate(session, ids, g, [&](int32_t id) {
    if (!tok->is_eog(id)) from_file += tok->piece(id);
    return true;
  });
  EXPECT_EQ(in_memory, from_file);
  EXPECT_FALSE(in_memory.empty());
}

TEST(InSitu, IsqNames) {
  const auto q4k = insitu::isq_options("Q4K");
  EXPECT_TRUE(q4k.pure);
  EXPECT_EQ(q4k.ftype, quantize::FType::Q4_K_M);
  EXPECT_EQ(insitu::isq_options("Q8_0").ftype, quantize::FType::Q8_0);
  const auto mix = insitu::isq_options("Q3_K_S");
  EXPECT_FALSE(mix.pure);
  EXPECT_EQ(mix.ftype, quantize::FType::Q3_K_S);
  try {
    (void)insitu::isq_options("Q4KX");
    ADD_FAILURE() << "accepted Q4KX";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Q4K"), std::string::npos) << e.what();
  }
}

// imq run: the generated text alone on stdout (what Runner::generate gives, after the prompt);
// on stderr, not a terminal here, one line per stage and no progress bar.
TEST(InSitu, CliStdoutHoldsOnlyTheText) {
  TempDir dir;
  const std::string model = dir.file("m.gguf"), text = source_file("README.md");
  ASSERT_EQ(run_imq("synth -o " + model + " --n-embd 256 --n-ff 512 --n-layer 2 --vocab 512").rc, 0);
  const RunResult r = run_imq("run -m " + model + " --isq Q4K --calibration-file " + text +
                              " --calibration-ctx 128 --calibration-chunks 3 -p 'The model' -n 8 --temp 0 -t 2");
  ASSERT_EQ(r.rc, 0) << r.err;
  insitu::Options o;
  o.isq = "Q4K";
  o.calibration_file = text;
  o.calibration_ctx = 128;
  o.calibration_chunks = 3;
  o.n_threads = 2;
  std::vector<insitu::Stage> stages;
  o.progress = [&](insitu::Stage st, uint64_t, uint64_t) {
    if (stages.empty() || stages.back() != st) stages.push_back(st);
  };
  auto runner = insitu::Runner::build(model, o);
  eval::SamplingOptions greedy;
  greedy.temp = 0;
  EXPECT_EQ(r.out, "The model" + runner->generate("The model", 8, greedy) + "\n");
  EXPECT_EQ(stages, (std::vector<insitu::Stage>{insitu::Stage::Load, insitu::Stage::Calibrate, insitu::Stage::Quantize}));
  // One line per stage, no terminal control characters.
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 3) << r.err;
  EXPECT_EQ(r.err.find('\r'), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\033'), std::string::npos) << r.err;
  for (const char* w : {"imq run: loaded ", "imq run: calibrated on 3 chunks", "imq run: quantized "})
    EXPECT_NE(r.err.find(w), std::string::npos) << w << " not in: " << r.err;
}

TEST(InSitu, CliRunsAndWritesOnlyWhatIsAsked) {
  TempDir dir;
  const std::string model = dir.file("m.gguf");
  ASSERT_EQ(run_imq("synth -o " + model + " --n-embd 256 --n-ff 512 --n-layer 2 --vocab 512").rc, 0);
  RunResult r = run_imq("run -m " + model + " --isq Q8_0 -p hello -n 5 --temp 0 -t 2");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out.rfind("hello", 0), 0u) << r.out;
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 1);
  r = run_imq("run -m " + model + " --isq Q4K");
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("nothing to do"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace imq::test
