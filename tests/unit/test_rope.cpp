// RoPE against its float64 reference and Hugging Face's formula worked by hand; the rotation's
// properties (position 0 is the identity, each pair keeps its norm); the backward against
// central differences of the forward and against the exact backward.
#include <cmath>

#include <gtest/gtest.h>

#include "attention_test_data.hpp"
#include "one_rank_model.hpp"
#include "tp_mlp/attention_reference.hpp"
#include "tp_mlp/rope.hpp"

using namespace tp_mlp;

namespace {

constexpr double kTheta = 10000;  // LLaMA's
constexpr long kBatch = 2, kSeqLen = 5, kHeads = 4;
constexpr double kFloatTolerance = 1e-6;  // a few float roundings per element

// A Rope built as the program builds its parts: planned, then in a workspace of that plan.
struct BuiltRope {
  Rope* rope = nullptr;
  std::unique_ptr<Workspace> ws;
  BuiltRope(long seq_len, long head_dim)
      : ws(build_planned(
            [&](Workspace& w) { rope = &w.make<Rope>(w, seq_len, head_dim, kTheta); })) {}
};

class RopeHeads : public ::testing::TestWithParam<long> {};  // the head size

}  // namespace

TEST_P(RopeHeads, ForwardMatchesTheExactRotation) {
  const long d = GetParam();
  const BuiltRope built(kSeqLen, d);
  Matrix x = normal_matrix(kBatch * kSeqLen, kHeads * d, 1);
  MatrixD exact = x.cast<double>();
  built.rope->forward(x);
  exact_rope(exact, kSeqLen, d, kTheta);
  EXPECT_LT(relative_error(x, exact), kFloatTolerance);
}

// Far positions: the angles reach 4095 radians, and the tables, computed in double, stay
// accurate to a float's rounding there too.
TEST_P(RopeHeads, ForwardMatchesTheExactRotationAtFarPositions) {
  const long d = GetParam(), seq_len = 4096;
  const BuiltRope built(seq_len, d);
  Matrix x = normal_matrix(seq_len, d, 2);
  MatrixD exact = x.cast<double>();
  built.rope->forward(x);
  exact_rope(exact, seq_len, d, kTheta);
  EXPECT_LT(relative_error(x, exact), kFloatTolerance);
}

TEST_P(RopeHeads, PositionZeroIsTheIdentity) {
  const long d = GetParam();
  const BuiltRope built(kSeqLen, d);
  const Matrix x = normal_matrix(kBatch * kSeqLen, kHeads * d, 3);
  Matrix rotated = x;
  built.rope->forward(rotated);
  for (long sequence = 0; sequence < kBatch; ++sequence)  // each sequence's first token
    EXPECT_EQ(rotated.row(sequence * kSeqLen), x.row(sequence * kSeqLen));
}

TEST_P(RopeHeads, EachPairKeepsItsNorm) {
  const long d = GetParam(), half = d / 2;
  const BuiltRope built(kSeqLen, d);
  const Matrix x = normal_matrix(kBatch * kSeqLen, kHeads * d, 4);
  Matrix rotated = x;
  built.rope->forward(rotated);
  for (long row = 0; row < x.rows(); ++row)
    for (long head = 0; head < kHeads; ++head)
      for (long i = 0; i < half; ++i) {
        const long c1 = head * d + i, c2 = c1 + half;
        EXPECT_NEAR(std::hypot(rotated(row, c1), rotated(row, c2)),
                    std::hypot(x(row, c1), x(row, c2)),
                    kFloatTolerance * std::hypot(x(row, c1), x(row, c2)));
      }
}

TEST_P(RopeHeads, BackwardMatchesCentralDifferencesAndTheExactBackward) {
  const long d = GetParam();
  const BuiltRope built(kSeqLen, d);
  Matrix x = normal_matrix(kBatch * kSeqLen, kHeads * d, 5);
  const Matrix d_out = normal_matrix(kBatch * kSeqLen, kHeads * d, 6);
  Matrix dx = d_out;
  built.rope->backward(dx);
  auto loss = [&] {  // L = Σ rope(x) ⊙ dO
    Matrix rotated = x;
    built.rope->forward(rotated);
    return rotated.cast<double>().cwiseProduct(d_out.cast<double>()).sum();
  };
  constexpr float kStep = 1e-2f;
  constexpr double kTolerance = 1e-3;  // L is linear in x: rounding is all the difference has
  for (long i = 0; i < x.size(); ++i)
    EXPECT_NEAR(dx.data()[i], central_difference(x, i, kStep, loss), kTolerance) << "element " << i;
  MatrixD exact = d_out.cast<double>();
  exact_rope_backward(exact, kSeqLen, d, kTheta);
  EXPECT_LT(relative_error(dx, exact), kFloatTolerance);
}

INSTANTIATE_TEST_SUITE_P(HeadSizes, RopeHeads, ::testing::Values(4, 8));

// Hugging Face's rotate_half by hand, d = 4 (θ^(−2i/d): 1 and 0.01), x = [1, 2, 3, 4] at
// position 1: pairs (x0, x2) = (1, 3) turn by 1 radian, (x1, x3) = (2, 4) by 0.01:
//   x0' = 1·cos 1 − 3·sin 1,         x2' = 3·cos 1 + 1·sin 1,
//   x1' = 2·cos 0.01 − 4·sin 0.01,   x3' = 4·cos 0.01 + 2·sin 0.01.
TEST(Rope, MatchesHuggingFacesFormulaWorkedByHand) {
  const BuiltRope built(2, 4);
  Matrix x(2, 4);
  x << 1, 2, 3, 4,  // position 0
      1, 2, 3, 4;   // position 1
  built.rope->forward(x);
  const double expected[] = {-1.9841106486, 1.9599006675, 2.4623779024, 4.0197996683};
  for (long c = 0; c < 4; ++c) {
    EXPECT_EQ(x(0, c), float(c + 1));
    EXPECT_NEAR(x(1, c), expected[c], kFloatTolerance * 4);
  }
}
