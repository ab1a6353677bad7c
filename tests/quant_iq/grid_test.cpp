// The grid i-quants' format constants and lattice search: every grid table, expanded as ggml
// stores it, hashes to llama.cpp's table (ggml-common.h: iq1s_grid, iq2xxs_grid, iq2xs_grid,
// iq2s_grid, iq3xxs_grid, iq3s_grid, ksigns_iq2xs; sha256 of their little-endian bytes, taken from
// llama.cpp's header, whose tables agree with the quantizer's kgrid_* lists imq stores), and the
// neighbour lists hold exactly the grid points at the nearest distinct distances. That every
// grid entry decodes as llama.cpp's blocks do is checked end to end by the byte-identity tests
// (tests/quantize) and the KLD tests (tests/eval): no llama.cpp-made i-quant file is shipped to
// decode here.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <vector>

#include "common/sha256.h"
#include "quant/iq1/codecs.h"
#include "quant/iq1/iq1s_grid.h"
#include "quant/iq2/codecs.h"
#include "quant/iq2/iq2s_grid.h"
#include "quant/iq2/iq2xs_grid.h"
#include "quant/iq2/iq2xxs_grid.h"
#include "quant/iq3/codecs.h"
#include "quant/iq3/iq3s_grid.h"
#include "quant/iq3/iq3xxs_grid.h"
#include "quant/lattice/lattice.h"

namespace imq {
namespace {

using quant::Lattice;

template <typename Word>
std::string table_sha(int n, Word (*word)(int)) {
  std::vector<uint8_t> bytes(size_t(n) * sizeof(Word));
  for (int g = 0; g < n; ++g) {
    const Word w = word(g);
    std::memcpy(bytes.data() + size_t(g) * sizeof(Word), &w, sizeof w);  // little-endian host
  }
  return test::sha256_hex(bytes);
}

TEST(GridTables, ExpandToLlamaCppTables) {
  EXPECT_EQ(table_sha<uint64_t>(256, quant::iq2::xxs_grid_word),
            "05826b5d3e472a3a78f196be62ac78acf81df0f909626e12ab9fa2a5d490dd54");
  EXPECT_EQ(table_sha<uint64_t>(512, quant::iq2::xs_grid_word),
            "06e47aaca60b4dc1d9b5a3f34540437058a6b142b4d7a59d5ded769b4d1bf1de");
  EXPECT_EQ(table_sha<uint64_t>(1024, quant::iq2::s_grid_word),
            "e1aa1473412b0552c2174c30ef22ab4073f6a181b85a17056e8249bd2932fd88");
  EXPECT_EQ(table_sha<uint32_t>(256, quant::iq3::xxs_grid_word),
            "46e35f5a997efdee6c99ce57854c8a0d4f0ff8ca57e5e8a60c0793ea580acf5d");
  EXPECT_EQ(table_sha<uint32_t>(512, quant::iq3::s_grid_word),
            "bd1af4945a1717c65610b0284e4628b9a1ba3b306fae3a06f6e5f597356e349f");
  EXPECT_EQ(table_sha<uint64_t>(2048, quant::iq1::grid_word),
            "07540ffc1aeaf6ad4d97e96b0fcc765aae39671d4ae4a27bbd0e796fde167c6a");
}

TEST(GridTables, SignBytesAreLlamaCppKsigns) {
  std::vector<uint8_t> ksigns(128);
  for (uint32_t s = 0; s < 128; ++s) {
    ksigns[s] = quant::sign_byte(s);
    EXPECT_EQ(__builtin_popcount(ksigns[s]) % 2, 0) << s;  // an even number of minus signs
    EXPECT_EQ(ksigns[s] & 127, int(s));
  }
  EXPECT_EQ(test::sha256_hex(ksigns), "a76742a603f8beca5212ecce0f1f02f11a4887fd2f7c8b15aca0ea3eb3380c31");
}

struct LatticeCase {
  const char* name;
  const Lattice& (*lattice)();
  const uint16_t* grid;
  int size, n_levels, shells;
};

void PrintTo(const LatticeCase& c, std::ostream* os) { *os << c.name; }

class Lattices : public ::testing::TestWithParam<LatticeCase> {};

TEST_P(Lattices, GridPointsMapToThemselves) {
  const LatticeCase& c = GetParam();
  const Lattice& lat = c.lattice();
  ASSERT_EQ(lat.size(), c.size);
  std::set<uint16_t> distinct(c.grid, c.grid + c.size);
  EXPECT_EQ(int(distinct.size()), c.size);
  for (int g = 0; g < c.size; ++g) {
    ASSERT_EQ(lat.find(c.grid[g]), g);
    int8_t l[8];
    for (int i = 0; i < lat.dim(); ++i) {
      l[i] = int8_t((lat.point(g)[i] - 1) / 2);
      ASSERT_LT(l[i], c.n_levels);
    }
    EXPECT_EQ(lat.pack(l), c.grid[g]);
  }
}

// Brute force over every searched off-grid point: nearest() picks, at zero-value data with
// unit weights and scale 1, the grid point at the least distance (lowest index on ties), and
// the list holds exactly the points of the `shells` smallest distances.
TEST_P(Lattices, NeighbourListsAreTheNearestShells) {
  const LatticeCase& c = GetParam();
  const Lattice& lat = c.lattice();
  const int dim = lat.dim(), bits = lat.bits();
  const uint32_t n_codes = 1u << (dim * bits);
  int checked = 0;
  for (uint32_t code = 0; code < n_codes; code += (dim == 8 ? 7 : 1)) {
    bool searched = true;
    int pos[8];
    for (int i = 0; i < dim; ++i) {
      const int l = int((code >> (bits * i)) & ((1u << bits) - 1));
      searched = searched && l < c.n_levels;
      pos[i] = 2 * l + 1;
    }
    if (!searched || lat.find(code) >= 0) continue;
    std::vector<int> d2(size_t(c.size));
    for (int g = 0; g < c.size; ++g) {
      int s = 0;
      for (int i = 0; i < dim; ++i) s += (lat.point(g)[i] - pos[i]) * (lat.point(g)[i] - pos[i]);
      d2[size_t(g)] = s;
    }
    std::vector<int> shells(d2);
    std::sort(shells.begin(), shells.end());
    shells.erase(std::unique(shells.begin(), shells.end()), shells.end());
    const int limit = shells[size_t(std::min<int>(c.shells, int(shells.size())) - 1)];
    // The point itself as data: the best neighbour is the nearest grid point.
    float x[8], w[8];
    for (int i = 0; i < dim; ++i) x[i] = float(pos[i]), w[i] = 1.0f;
    int8_t l[8];
    const int best = lat.nearest(code, x, w, 1.0f, l);
    EXPECT_EQ(d2[size_t(best)], shells[0]) << "code " << code;
    EXPECT_EQ(best, int(std::find(d2.begin(), d2.end(), shells[0]) - d2.begin())) << "code " << code;
    // A far target along one axis reaches the farthest listed shell but never beyond it.
    for (int i = 0; i < dim; ++i) x[i] = 1000.0f;
    const int far = lat.nearest(code, x, w, 1.0f, l);
    EXPECT_LE(d2[size_t(far)], limit) << "code " << code;
    ++checked;
  }
  EXPECT_GT(checked, 100);
}

INSTANTIATE_TEST_SUITE_P(
    Grids, Lattices,
    ::testing::Values(LatticeCase{"IQ3_XXS", quant::iq3::xxs_lattice, quant::iq3::kXxsGrid, 256, 8, 2},
                      LatticeCase{"IQ3_S", quant::iq3::s_lattice, quant::iq3::kSGrid, 512, 8, 3},
                      LatticeCase{"IQ2_XXS", quant::iq2::xxs_lattice, quant::iq2::kXxsGrid, 256, 3, 2},
                      LatticeCase{"IQ2_XS", quant::iq2::xs_lattice, quant::iq2::kXsGrid, 512, 3, 2},
                      LatticeCase{"IQ2_S", quant::iq2::s_lattice, quant::iq2::kSGrid, 1024, 3, 1},
                      LatticeCase{"IQ1", quant::iq1::lattice, quant::iq1::kGrid, 2048, 3, 3}),
    [](const auto& info) { return std::string(info.param.name); });

// Sign folding keeps an even number of minus signs; the odd one out is the least important.
TEST(FoldSigns, OddCountFlipsTheLeastImportantValue) {
  const float x[8] = {-1.0f, 2.0f, -3.0f, 4.0f, -0.5f, 6.0f, 7.0f, 8.0f};
  const float w[8] = {1, 1, 1, 1, 1, 1, 1, 1};
  float xval[8];
  const uint8_t s = quant::fold_signs(x, w, xval);
  EXPECT_EQ(s, (1u << 0) | (1u << 2));  // value 4 (w x^2 = 0.25) keeps its stored sign +
  EXPECT_EQ(xval[4], -0.5f);
  EXPECT_EQ(xval[0], 1.0f);
  EXPECT_EQ(quant::sign_byte(s), s);   // two minus signs: parity bit clear
}

}  // namespace
}  // namespace imq
