// GeLU and its derivative against values computed independently (Python's math.erf).
#include <cmath>

#include <gtest/gtest.h>

#include "tp_mlp/activation.hpp"

using namespace tp_mlp;

namespace {
// x·Φ(x) for x in {-3, -1, -0.5, 0, 0.5, 1, 2, 3}, from x * (1 + erf(x/√2)) / 2.
const std::vector<std::pair<float, double>> kGelu = {
    {-3.0f, -0.0040496941}, {-1.0f, -0.15865525393}, {-0.5f, -0.15426876936}, {0.0f, 0.0},
    {0.5f, 0.34573123064},  {1.0f, 0.84134474607},   {2.0f, 1.9544997361},    {3.0f, 2.9959503059}};

Matrix row_of(const std::vector<float>& values) {
  Matrix m(1, Eigen::Index(values.size()));
  for (std::size_t i = 0; i < values.size(); ++i) m(0, Eigen::Index(i)) = values[i];
  return m;
}
}  // namespace

TEST(Gelu, MatchesExactErfForm) {
  std::vector<float> xs;
  xs.reserve(kGelu.size());
  for (const auto& [x, _] : kGelu) xs.push_back(x);
  Matrix h = row_of(xs);
  gelu(h, h);
  for (std::size_t i = 0; i < kGelu.size(); ++i)
    EXPECT_NEAR(h(0, Eigen::Index(i)), kGelu[i].second, 1e-6) << "x = " << kGelu[i].first;
}

TEST(Gelu, IsNotTheTanhApproximation) {
  // At x = 1 the tanh form gives 0.8411920; the erf form 0.8413447. They differ by 1.5e-4.
  Matrix h = Matrix::Constant(1, 1, 1.0f);
  gelu(h, h);
  EXPECT_NEAR(h(0, 0), 0.84134474607, 1e-6);
  EXPECT_GT(std::abs(h(0, 0) - 0.8411920), 1e-4);
}

TEST(Gelu, OutOfPlaceAndOnAColumnSlice) {
  Matrix h = Matrix::Constant(3, 4, 1.0f), out = Matrix::Zero(3, 4);
  gelu(h.middleCols(1, 2), out.middleCols(1, 2));
  EXPECT_EQ(out(0, 0), 0.0f);
  EXPECT_EQ(h(1, 1), 1.0f);  // the input is untouched
  EXPECT_NEAR(out(1, 1), 0.84134474607, 1e-6);
  EXPECT_NEAR(out(2, 2), 0.84134474607, 1e-6);
}

TEST(Gelu, DerivativeMatchesFiniteDifferences) {
  // Central differences of the double-precision formula; the float derivative must agree.
  auto f = [](double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); };
  const std::vector<float> xs = {-4.0f, -2.5f, -1.0f, -0.3f, 0.0f, 0.3f, 1.0f, 2.5f, 4.0f};
  const Matrix h = row_of(xs);
  Matrix grad = Matrix::Ones(1, Eigen::Index(xs.size()));
  gelu_backward(h, grad);
  constexpr double step = 1e-5;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const double numeric = (f(xs[i] + step) - f(xs[i] - step)) / (2 * step);
    EXPECT_NEAR(grad(0, Eigen::Index(i)), numeric, 2e-6) << "x = " << xs[i];
  }
}

TEST(Gelu, BackwardScalesTheIncomingGradient) {
  const Matrix h = Matrix::Constant(1, 1, 1.0f);
  Matrix grad = Matrix::Constant(1, 1, 3.0f);
  gelu_backward(h, grad);
  // GeLU'(1) = Φ(1) + φ(1) = 0.8413447 + 0.2419707
  EXPECT_NEAR(grad(0, 0), 3.0 * (0.84134474607 + 0.24197072452), 1e-5);
}
