// The attention block's scheme and the layer's in a group of one (serial, and megatron at
// --tp-size 1) against their float64 references: Y, dX and every weight and bias gradient within
// their bounds, for multi-head and grouped-query attention, in fp32 and bf16; a planted wrong
// KV head is caught in both; and the layer's dX against central differences of its forward,
// which checks the backward's maths (the reference's included) by another route.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "attention_model.hpp"
#include "tp_mlp/faults.hpp"

using namespace tp_mlp;

namespace {

struct Shape {
  int heads, kv_heads, head_size;
};

constexpr int kSeqLen = 7;

AttentionModel one_rank(Scheme scheme, const Shape& shape, DType dtype = DType::fp32) {
  Config cfg = attention_config(1, shape.heads, shape.kv_heads, shape.head_size, kSeqLen, 0);
  cfg.dtype = dtype;
  return {scheme, cfg};
}

class GroupOfOne : public ::testing::TestWithParam<Scheme> {};

TEST_P(GroupOfOne, EveryTensorWithinItsBound) {
  for (const DType dtype : {DType::fp32, DType::bf16})
    for (const Shape shape : {Shape{4, 4, 8}, Shape{6, 2, 8}, Shape{4, 1, 16}}) {
      const AttentionModel m = one_rank(GetParam(), shape, dtype);
      const std::vector<Verification> checks = m.verify();
      ASSERT_EQ(checks.size(), 10U);  // Y, dX, dWq, dWk, dWv, dWo, dbq, dbk, dbv, dbo
      for (const Verification& v : checks) {
        EXPECT_TRUE(v.passed) << dtype_name(dtype) << " N=" << shape.heads
                              << " K=" << shape.kv_heads << ": " << v.tensor << " at "
                              << v.max_diff_over_bound << "x its bound";
        // Rigorous where it is tighter, never looser than the cap a mistake must exceed.
        EXPECT_LE(v.tolerance, AttentionReference::mistake(dtype)) << v.tensor;
      }
    }
}

// megatron-inv in a group of one: every tensor within its bound, the exact sums' grids
// included, for multi-head and grouped-query attention in fp32 and bf16 (its bits at T = 1...4:
// the launched invariant cases).
TEST(InvariantAttention, EveryTensorWithinItsBound) {
  for (const DType dtype : {DType::fp32, DType::bf16})
    for (const Shape shape : {Shape{4, 4, 8}, Shape{6, 2, 8}, Shape{4, 1, 16}}) {
      Config cfg = attention_config(1, shape.heads, shape.kv_heads, shape.head_size, kSeqLen, 0);
      cfg.dtype = dtype;
      cfg.invariant = true;
      const AttentionModel m = {Scheme::megatron_inv, cfg};
      const std::vector<Verification> checks = m.verify();
      ASSERT_EQ(checks.size(), 10U);
      for (const Verification& v : checks)
        EXPECT_TRUE(v.passed) << dtype_name(dtype) << " N=" << shape.heads
                              << " K=" << shape.kv_heads << ": " << v.tensor << " at "
                              << v.max_diff_over_bound << "x its bound";
    }
}

// The same for the whole layer: its blocks' invariant schemes, the norms between them.
TEST(InvariantLayer, EveryTensorWithinItsBound) {
  for (const DType dtype : {DType::fp32, DType::bf16}) {
    Config cfg = layer_config(1, 6, 2, 8, kSeqLen, 0, Activation::swiglu, NormKind::rms);
    cfg.dtype = dtype;
    cfg.invariant = true;
    const AttentionModel m = {Scheme::megatron_inv, cfg};
    for (const Verification& v : m.verify())
      EXPECT_TRUE(v.passed) << dtype_name(dtype) << ": " << v.tensor << " at "
                            << v.max_diff_over_bound << "x its bound";
  }
}

INSTANTIATE_TEST_SUITE_P(Attention, GroupOfOne, ::testing::Values(Scheme::megatron, Scheme::serial),
                         scheme_test_name);

TEST_P(GroupOfOne, TheLayerWithinItsBounds) {
  for (const auto& [activation, norm] : {std::pair{Activation::gelu, NormKind::layer},
                                         std::pair{Activation::swiglu, NormKind::rms}}) {
    const AttentionModel m = {GetParam(), layer_config(1, 6, 2, 8, kSeqLen, 0, activation, norm)};
    const std::vector<Verification> checks = m.verify();
    // Y, dX, dWq, dWk, dWv, dWo, dW1 (dW3), dW2, the norms' weights (and biases), the biases;
    // then block by block, each norm's output, dX, weight (and bias), attention's Y, dX, weights
    // and biases, the MLP's
    const std::size_t projections = activation == Activation::swiglu ? 2 : 1;
    const std::size_t norms = norm == NormKind::layer ? 4 : 2;
    const std::size_t blocks = (4 + norms) + (2 + 4 + 4) + (2 + 2 * (projections + 1));
    EXPECT_EQ(checks.size(), 2 + 4 + projections + 1 + norms + 4 + projections + 1 + blocks);
    for (const Verification& v : checks)
      EXPECT_TRUE(v.passed) << norm_name(norm) << ": " << v.tensor << " at "
                            << v.max_diff_over_bound << "x its bound";
  }
}

TEST(ParallelLayer, DxMatchesCentralDifferencesOfTheForward) {
  for (const auto& [activation, norm] : {std::pair{Activation::gelu, NormKind::layer},
                                         std::pair{Activation::swiglu, NormKind::rms}}) {
    const AttentionModel m = {Scheme::serial,
                              layer_config(1, 2, 1, 4, kSeqLen, 0, activation, norm)};
    m.scheme->forward(m.x);
    const Matrix dx = m.scheme->backward(m.dy);  // a copy: the next passes write over it
    auto loss = [&](const Matrix& input) {       // in double, so the difference is not all rounding
      return m.scheme->forward(input).cast<double>().cwiseProduct(m.dy.cast<double>()).sum();
    };
    // As for the MLP (test_backward_fd.cpp): rounding stays small next to the step, and the
    // step's O(step²) truncation too.
    constexpr float kStep = 1e-2f;
    constexpr double kRelativeTolerance = 1e-2;
    for (long row = 0; row < m.x.rows(); ++row)
      for (long col = 0; col < m.x.cols(); ++col) {
        Matrix plus = m.x, minus = m.x;
        plus(row, col) += kStep;
        minus(row, col) -= kStep;
        const double numeric = (loss(plus) - loss(minus)) / (2.0 * kStep);
        EXPECT_NEAR(dx(row, col), numeric, kRelativeTolerance * (1.0 + std::abs(numeric)))
            << norm_name(norm) << " dX(" << row << ", " << col << ")";
      }
  }
}

TEST(ParallelAttention, AWrongKvHeadIsCaught) {
  for (const DType dtype : {DType::fp32, DType::bf16}) {
    const AttentionModel m = one_rank(Scheme::megatron, {6, 2, 8}, dtype);
    plant_fault(Fault::wrong_kv_head, *m.scheme, m.cfg, m.tp);
    const Verification y = m.verify().front();
    EXPECT_FALSE(y.passed) << dtype_name(dtype);
    EXPECT_GT(y.max_diff_over_bound, 10) << dtype_name(dtype);
  }
}

}  // namespace
