// .npy files: a header NumPy accepts, the data in C order, and nothing left half-written.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <gtest/gtest.h>

#include "tp_mlp/npy.hpp"

using namespace tp_mlp;
namespace fs = std::filesystem;

namespace {
std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
fs::path scratch(const char* name) { return fs::temp_directory_path() / name; }
}  // namespace

TEST(Npy, HeaderIsVersionOneAlignedTo64Bytes) {
  const fs::path path = scratch("tp_mlp_test_header.npy");
  Matrix m(2, 3);
  m << 1, 2, 3, 4, 5, 6;
  save_npy(path.string(), m, {2, 3});
  const std::string bytes = slurp(path);
  ASSERT_GE(bytes.size(), 10u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  const std::size_t header = std::uint8_t(bytes[8]) | std::uint8_t(bytes[9]) << 8;
  EXPECT_EQ((10 + header) % 64, 0u);
  const std::string dict = bytes.substr(10, header);
  EXPECT_NE(dict.find("'descr': '<f4'"), std::string::npos);
  EXPECT_NE(dict.find("'fortran_order': False"), std::string::npos);
  EXPECT_NE(dict.find("'shape': (2, 3)"), std::string::npos);
  EXPECT_EQ(dict.back(), '\n');
  ASSERT_EQ(bytes.size(), 10 + header + 6 * sizeof(float));
  const float* data = reinterpret_cast<const float*>(bytes.data() + 10 + header);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(data[i], float(i + 1));  // row-major
  fs::remove(path);
}

TEST(Npy, OneDimensionalShapeIsAPythonTuple) {
  const fs::path path = scratch("tp_mlp_test_1d.npy");
  save_npy(path.string(), Matrix::Zero(1, 4), {4});
  EXPECT_NE(slurp(path).find("'shape': (4,)"), std::string::npos);
  fs::remove(path);
}

TEST(Npy, AnUnfinishedFileNeverAppears) {
  std::string pattern = scratch("tp_mlp_test_partial_XXXXXX").string();
  ASSERT_NE(mkdtemp(pattern.data()), nullptr);
  const fs::path dir = pattern;
  {
    NpyWriter npy((dir / "partial.npy").string(), {4, 4});
    npy.append(Matrix::Zero(2, 4));
    EXPECT_THROW(npy.commit(), std::logic_error);  // 8 of 16 elements
  }
  EXPECT_TRUE(fs::is_empty(dir));  // neither the file nor its temporary
  fs::remove(dir);
}

TEST(Npy, ArraysOfASetAppearAtItsCommit) {
  const fs::path dir = scratch("tp_mlp_test_npy_set");
  fs::remove_all(dir);
  {
    FileSet set(dir.string());
    save_npy(set, "x.npy", Matrix::Ones(2, 2), {2, 2});
    NpyWriter y(set, "y.npy", {4});
    y.append(Matrix::Zero(1, 4));
    y.commit();
    EXPECT_FALSE(fs::exists(dir / "x.npy"));
    set.commit();
  }
  EXPECT_NE(slurp(dir / "x.npy").find("'shape': (2, 2)"), std::string::npos);
  EXPECT_NE(slurp(dir / "y.npy").find("'shape': (4,)"), std::string::npos);
  fs::remove_all(dir);
}

TEST(Npy, UnwritablePathThrows) {
  EXPECT_THROW(NpyWriter("/nonexistent-dir/x.npy", {1}), std::runtime_error);
}
