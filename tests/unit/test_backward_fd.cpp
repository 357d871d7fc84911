// The analytic backward pass against finite differences of the forward pass: for the loss
// L = Σ Y ⊙ dY, dL/dX is exactly the dX that backward(dY) returns, and dL/dθ the gradient of
// each parameter θ: the first layer's [W1 | W3] (gate and up for SwiGLU), W2 and the biases.
#include <cmath>
#include <string>
#include <tuple>

#include <gtest/gtest.h>

#include "one_rank_model.hpp"

using namespace tp_mlp;

using SchemeAndActivation = std::tuple<Scheme, Activation>;
class FiniteDifferences : public ::testing::TestWithParam<SchemeAndActivation> {};
// The weights are perturbed through parameters(), which the invariant schemes, whose weights
// live in F blocks, do not offer: their weight gradients are checked against the reference.
class WeightFiniteDifferences : public ::testing::TestWithParam<SchemeAndActivation> {};

TEST_P(FiniteDifferences, DxMatchesCentralDifferencesOfTheForward) {
  const auto [scheme, activation] = GetParam();
  OneRankModel m(scheme, 8, 2, 3, activation);
  MlpScheme* mlp = m.mlp;
  const Matrix& x = m.x;
  const Matrix& dy = m.dy;

  mlp->forward(x);
  const Matrix dx = mlp->backward(dy);    // a copy: the next passes write over it
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
          << scheme_name(scheme) << " " << activation_name(activation) << " dX(" << row << ", "
          << col << ")";
    }
}

TEST_P(WeightFiniteDifferences, WeightGradientsMatchCentralDifferencesOfTheForward) {
  const auto [scheme, activation] = GetParam();
  OneRankModel m(scheme, 8, 2, 3, activation);
  MlpScheme* mlp = m.mlp;
  mlp->forward(m.x);
  mlp->backward(m.dy);
  const Gradients grads = mlp->gradients();
  const Parameters params = mlp->parameters();
  auto loss = [&] {
    return mlp->forward(m.x).cast<double>().cwiseProduct(m.dy.cast<double>()).sum();
  };
  constexpr float kStep = 1e-2f;
  constexpr double kRelativeTolerance = 1e-2;
  // Every parameter tensor, with its gradient; every few elements of each.
  const std::pair<Tensor<float>*, const Tensor<float>*> tensors[] = {{params.w_in, grads.w_in},
                                                                     {params.w_out, grads.w_out},
                                                                     {params.b_in, grads.b_in},
                                                                     {params.b_out, grads.b_out}};
  for (const auto& [param, grad] : tensors)
    for (long i = 0; i < param->size(); i += 5) {
      float& value = param->data()[i];
      const float saved = value;
      auto set = [&](float v) {  // as an optimizer would: change, then tell the scheme
        value = v;
        mlp->parameters_changed();
      };
      set(saved + kStep);
      const double plus = loss();
      set(saved - kStep);
      const double minus = loss();
      set(saved);
      const double numeric = (plus - minus) / (2.0 * kStep);
      EXPECT_NEAR(grad->data()[i], numeric, kRelativeTolerance * (1.0 + std::abs(numeric)))
          << scheme_name(scheme) << " " << activation_name(activation) << " element " << i;
    }
}

std::string test_name(const ::testing::TestParamInfo<SchemeAndActivation>& param) {
  return scheme_test_name({std::get<0>(param.param), param.index}) + "_" +
         activation_name(std::get<1>(param.param));
}

INSTANTIATE_TEST_SUITE_P(
    ColumnRowSchemes, FiniteDifferences,
    ::testing::Combine(::testing::Values(Scheme::megatron, Scheme::megatron_sp,
                                         Scheme::megatron_overlap, Scheme::serial,
                                         Scheme::megatron_inv, Scheme::megatron_overlap_inv),
                       ::testing::Values(Activation::gelu, Activation::swiglu)),
    test_name);
INSTANTIATE_TEST_SUITE_P(
    ColumnRowSchemes, WeightFiniteDifferences,
    ::testing::Combine(::testing::Values(Scheme::megatron, Scheme::megatron_sp,
                                         Scheme::megatron_overlap, Scheme::serial),
                       ::testing::Values(Activation::gelu, Activation::swiglu)),
    test_name);
