// MappedFile's two ways into memory (mmap, and read for --no-mmap) give the same bytes and
// the same errors; lock_in_memory (--mlock) reports failure instead of throwing.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "imq/error.h"
#include "test_util.h"

namespace imq {
namespace {

std::string write_bytes(const test::TempDir& d, const std::string& name, size_t n) {
  const std::string path = d.file(name);
  std::ofstream f(path, std::ios::binary);
  for (size_t i = 0; i < n; ++i) f.put(char((i * 131 + 7) & 0xff));
  return path;
}

TEST(MappedFile, ReadModeGivesTheMappedBytes) {
  test::TempDir d;
  // Not a multiple of the page size, and larger than one read(2) might return.
  const std::string path = write_bytes(d, "a.bin", 3 * 4096 + 17);
  MappedFile mapped(path), read(path, FileAccess::kRead);
  EXPECT_TRUE(mapped.mapped());
  EXPECT_FALSE(read.mapped());
  ASSERT_EQ(mapped.bytes().size(), read.bytes().size());
  EXPECT_TRUE(std::equal(mapped.bytes().begin(), mapped.bytes().end(), read.bytes().begin()));
}

TEST(MappedFile, ReadModeSurvivesMoves) {
  test::TempDir d;
  const std::string path = write_bytes(d, "a.bin", 100);
  MappedFile a(path, FileAccess::kRead);
  const std::vector<uint8_t> expect(a.bytes().begin(), a.bytes().end());
  MappedFile b(std::move(a));
  EXPECT_TRUE(a.bytes().empty());
  ASSERT_EQ(b.bytes().size(), expect.size());
  EXPECT_TRUE(std::equal(expect.begin(), expect.end(), b.bytes().begin()));
  MappedFile c(write_bytes(d, "b.bin", 5));
  c = std::move(b);
  EXPECT_TRUE(std::equal(expect.begin(), expect.end(), c.bytes().begin()));
}

TEST(MappedFile, EmptyFileIsAnEmptySpanEitherWay) {
  test::TempDir d;
  const std::string path = write_bytes(d, "empty", 0);
  EXPECT_TRUE(MappedFile(path).bytes().empty());
  EXPECT_TRUE(MappedFile(path, FileAccess::kRead).bytes().empty());
}

TEST(MappedFile, ErrorsNameThePathInBothModes) {
  test::TempDir d;
  for (FileAccess a : {FileAccess::kMap, FileAccess::kRead}) {
    try {
      MappedFile f(d.file("missing"), a);
      FAIL();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("missing: cannot open"), std::string::npos) << e.what();
    }
    try {
      MappedFile f(d.path().string(), a);
      FAIL();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("not a regular file"), std::string::npos) << e.what();
    }
  }
}

TEST(LockInMemory, SucceedsOrSaysWhy) {
  test::TempDir d;
  MappedFile f(write_bytes(d, "a.bin", 4096));
  EXPECT_EQ(lock_in_memory({}), "");
  // The limit (RLIMIT_MEMLOCK) depends on the machine: either it locks, or it explains.
  const std::string why = lock_in_memory(f.bytes());
  if (!why.empty()) {
    EXPECT_EQ(why.rfind("cannot lock 4096 bytes in memory: ", 0), 0u) << why;
  }
}

}  // namespace
}  // namespace imq
