// The analytic backward pass against finite differences of the forward pass: for the loss
// L = Σ Y ⊙ dY, dL/dX is exactly the dX that backward(dY) returns.
#include <cmath>

#include <gtest/gtest.h>

#include "one_rank_model.hpp"

using namespace tp_mlp;

class FiniteDifferences : public ::testing::TestWithParam<Scheme> {};

TEST_P(FiniteDifferences, DxMatchesCentralDifferencesOfTheForward) {
  OneRankModel m(GetParam(), 8, 2, 3);
  MlpScheme* mlp = m.mlp.get();
  const Matrix& x = m.x;
  const Matrix& dy = m.dy;

  mlp->forward(x);
  const Matrix dx = mlp->backward(dy);
  auto loss = [&](const Matrix& input) {  // in double, so the difference is not all rounding
    return mlp->forward(input).cast<double>().cwiseProduct(dy.cast<double>()).sum();
  };
  // fp32 forward passes: a step large enough that rounding (~1e-7 of L) stays small next
  // to it, small enough that the O(step²) truncation is too.
  constexpr float kStep = 1e-2f;
  constexpr double kRelativeTolerance = 1e-2;
  for (long row = 0; row < x.rows(); ++row)
    for (long col = 0; col < x.cols(); col += 3) {
      Matrix plus = x, minus = x;
      plus(row, col) += kStep;
      minus(row, col) -= kStep;
      const double numeric = (loss(plus) - loss(minus)) / (2.0 * kStep);
      EXPECT_NEAR(dx(row, col), numeric, kRelativeTolerance * (1.0 + std::abs(numeric)))
          << scheme_name(GetParam()) << " dX(" << row << ", " << col << ")";
    }
}

INSTANTIATE_TEST_SUITE_P(ColumnRowSchemes, FiniteDifferences,
                         ::testing::Values(Scheme::megatron, Scheme::megatron_sp, Scheme::serial),
                         scheme_test_name);
