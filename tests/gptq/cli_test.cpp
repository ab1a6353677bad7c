// `imq quantize --calibration-file` from the command line, on a model made by `imq synth`:
// the file has the plain mix's size and other bytes, the log says how many weights got error
// feedback, the output evaluates, bad calibration input is one line naming the file, and a
// failed run leaves neither an output nor a temporary file.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "test_util.h"
#include "test_util_impl.h"

namespace imq::test {
namespace {

std::string write_text(const TempDir& d, const std::string& name, size_t sentences) {
  std::string s;
  for (size_t i = 0; i < sentences; ++i) s += "the calibration line " + std::to_string(i * 7919 % 1000) + " says little. ";
  std::ofstream(d.file(name)) << s;
  return d.file(name);
}

class CalibrationCli : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = d_.file("m.gguf");
    const auto r = run_imq("synth -o " + model_ + " --n-embd 256 --n-layer 2 --n-head 4 --n-head-kv 2 --n-ff 256 --vocab 300 --seed 3");
    ASSERT_EQ(r.rc, 0) << r.err;
  }
  size_t entries() const {
    size_t n = 0;
    for (const auto& e : std::filesystem::directory_iterator(d_.path())) n += e.is_regular_file();
    return n;
  }
  TempDir d_;
  std::string model_;
};

TEST_F(CalibrationCli, SameMixOtherValuesAndItEvaluates) {
  const std::string calib = write_text(d_, "calib.txt", 400);
  const std::string plain = d_.file("plain.gguf"), comp = d_.file("comp.gguf");
  auto r = run_imq("quantize " + model_ + " " + plain + " Q4_K_M 2");
  ASSERT_EQ(r.rc, 0) << r.err;
  r = run_imq("quantize --calibration-file " + calib + " --calibration-ctx 64 --calibration-chunks 4 " + model_ +
              " " + comp + " Q4_K_M 2");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("4 chunks of 64 tokens"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("weights with error feedback"), std::string::npos) << r.err;
  EXPECT_EQ(std::filesystem::file_size(plain), std::filesystem::file_size(comp));
  // The format itself is checked tensor by tensor in compensate_test.cpp.
  EXPECT_NE(read_all(plain), read_all(comp)) << "error compensation changed nothing";
  r = run_imq("perplexity -m " + comp + " -f " + calib + " -c 64 --chunks 2");
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("Final estimate: PPL"), std::string::npos) << r.out;
}

TEST_F(CalibrationCli, BadCalibrationInputIsOneLineAndLeavesNothing) {
  const std::string out = d_.file("out.gguf");
  const size_t before = entries();
  // Too short for one chunk.
  const std::string small = write_text(d_, "small.txt", 2);
  auto r = run_imq("quantize --calibration-file " + small + " --calibration-ctx 128 " + model_ + " " + out + " Q4_K_M 2");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("small.txt"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("fewer than one calibration chunk"), std::string::npos) << r.err;
  // Missing file.
  r = run_imq("quantize --calibration-file " + d_.file("nope.txt") + " " + model_ + " " + out + " Q4_K_M 2");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("nope.txt"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(out));
  EXPECT_EQ(entries(), before + 1) << "only small.txt was added";
}

}  // namespace
}  // namespace imq::test
