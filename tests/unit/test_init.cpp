// The master-weight generator: deterministic, sliceable, the same model at every TP size.
#include <cmath>

#include <gtest/gtest.h>

#include "tp_mlp/init.hpp"

using namespace tp_mlp;

namespace {

Config config(int hidden, int tp) {
  Config cfg;
  cfg.hidden_size = hidden;
  cfg.tp_size = tp;
  return cfg;
}

Matrix full(const MasterTensor& t, std::uint64_t seed) {
  Matrix m(t.rows, t.cols);
  fill_block(m, t, seed, 0, 0);
  return m;
}

}  // namespace

TEST(Init, SameSeedSameValuesOtherSeedOtherValues) {
  const Config cfg = config(32, 1);
  EXPECT_EQ(full(master_w1(cfg), 7), full(master_w1(cfg), 7));
  EXPECT_NE(full(master_w1(cfg), 7), full(master_w1(cfg), 8));
}

TEST(Init, TensorsAreIndependentStreams) {
  const Config cfg = config(32, 1);
  const Matrix w1 = full(master_w1(cfg), 7);  // [32, 128]
  const Matrix w2 = full(master_w2(cfg), 7);  // [128, 32]
  EXPECT_NE(w1.row(0).head(32), w2.row(0));   // same element indices, different streams
}

TEST(Init, EveryBlockEqualsTheSameBlockOfTheMaster) {
  const Config cfg = config(24, 1);
  const MasterTensor t = master_w1(cfg);  // [24, 96]
  const Matrix master = full(t, 3);
  for (long row0 : {0L, 5L, 23L})
    for (long col0 : {0L, 17L, 90L}) {
      Matrix block(t.rows - row0, std::min(6L, t.cols - col0));
      fill_block(block, t, 3, row0, col0);
      EXPECT_EQ(block, master.block(row0, col0, block.rows(), block.cols()))
          << "block at " << row0 << "," << col0;
    }
}

TEST(Init, MasterDoesNotDependOnTpSize) {
  // The TP degree must not leak into the model (the reference script's does).
  for (int tp : {1, 2, 4, 8}) {
    EXPECT_EQ(full(master_w1(config(16, tp)), 1), full(master_w1(config(16, 1)), 1));
    EXPECT_EQ(full(master_w2(config(16, tp)), 1), full(master_w2(config(16, 1)), 1));
  }
}

TEST(Init, DoubleBlocksHoldExactlyTheFloatValues) {
  const MasterTensor t = master_w2(config(8, 1));
  MatrixD d(t.rows, t.cols);
  fill_block(d, t, 5, 0, 0);
  EXPECT_EQ(d, full(t, 5).cast<double>());
}

TEST(Init, XavierUniformHasTheRightBoundAndSpread) {
  const Config cfg = config(64, 1);  // W1 [64, 256]: bound sqrt(6 / 320)
  const Matrix w = full(master_w1(cfg), 11);
  const double bound = std::sqrt(6.0 / (64 + 256));
  EXPECT_LE(w.cwiseAbs().maxCoeff(), bound);
  EXPECT_GT(w.cwiseAbs().maxCoeff(), 0.99 * bound);
  const double mean = w.cast<double>().mean();
  const double var = (w.cast<double>().array() - mean).square().mean();
  EXPECT_NEAR(mean, 0.0, 0.01 * bound);
  EXPECT_NEAR(var, bound * bound / 3, 0.03 * bound * bound / 3);  // U(-a, a) has variance a²/3
}

TEST(Init, InputIsStandardNormal) {
  Config cfg = config(128, 1);
  cfg.batch_size = 8;
  cfg.seq_len = 32;  // 32768 samples
  const Matrix x = full(master_input(cfg), 2);
  const double mean = x.cast<double>().mean();
  const double var = (x.cast<double>().array() - mean).square().mean();
  EXPECT_NEAR(mean, 0.0, 0.02);
  EXPECT_NEAR(var, 1.0, 0.03);
  EXPECT_TRUE(x.allFinite());
}
