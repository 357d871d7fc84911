// The analytic backward pass against finite differences of the forward pass: for the loss
// L = Σ Y ⊙ dY, dL/dX is exactly the dX that backward(dY) returns.
#include <algorithm>
#include <cmath>

#include <gtest/gtest.h>

#include "tp_mlp/comm.hpp"
#include "tp_mlp/init.hpp"
#include "tp_mlp/mlp.hpp"

using namespace tp_mlp;

class FiniteDifferences : public ::testing::TestWithParam<Scheme> {};

TEST_P(FiniteDifferences, DxMatchesCentralDifferencesOfTheForward) {
  Config cfg;
  cfg.tp_size = 1;
  cfg.hidden_size = 8;
  cfg.batch_size = 2;
  cfg.seq_len = 3;
  cfg.backward = cfg.bias = cfg.sequence_parallel = true;
  const World world;
  TpComm tp(world, 1);
  auto mlp = make_scheme(GetParam(), cfg, tp);
  Matrix x(cfg.tokens(), cfg.hidden_size), dy(cfg.tokens(), cfg.hidden_size);
  fill_block(x, master_input(cfg), cfg.seed, 0, 0);
  fill_block(dy, master_grad_output(cfg), cfg.seed, 0, 0);

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
                         [](const auto& info) {
                           std::string name = scheme_name(info.param);
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });
