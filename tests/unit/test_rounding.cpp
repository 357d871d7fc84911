// The float activations against the evaluation errors the verification bound assumes for them
// (rounding.hpp), on a spread of floats over every binade up to 256 and densely where GeLU is
// hardest (x near −5.6, where 1 + erf cancels); and the bound propagation on known cases.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "tp_mlp/activation.hpp"
#include "tp_mlp/rounding.hpp"

using namespace tp_mlp;

namespace {

constexpr double u = kFloatUnitRoundoff;

// Floats from every binade of [2⁻³⁰, 256), both signs, every `stride`-th one, and every float
// in [lo, hi).
Matrix sample(std::uint32_t stride, float lo, float hi) {
  std::vector<float> xs;
  auto bits_of = [](float f) {
    std::uint32_t b;
    std::memcpy(&b, &f, sizeof b);
    return b;
  };
  auto float_of = [](std::uint32_t b) {
    float f;
    std::memcpy(&f, &b, sizeof f);
    return f;
  };
  for (std::uint32_t b = bits_of(0x1p-30f); b < bits_of(256.0f); b += stride)
    xs.insert(xs.end(), {float_of(b), -float_of(b)});
  for (float x = lo; x < hi; x = std::nextafter(x, hi)) xs.push_back(x);
  Matrix m(1, long(xs.size()));
  std::memcpy(m.data(), xs.data(), xs.size() * sizeof(float));
  return m;
}

double allowed(EvaluationError e, double f, double x) {
  const double by_value = (e.rel * std::fabs(f) + e.abs) * u;
  if (e.per_input == 0) return by_value;
  return std::fmin(by_value, (e.per_input * std::fabs(x) + e.per_input_abs) * u);
}

double sigmoid(double a) { return 1 / (1 + std::exp(-a)); }

// The worst measured error over the model's allowance, for one float function.
template <typename Exact>
double worst(const Matrix& x, const Matrix& got, Exact exact, EvaluationError e) {
  double worst = 0;
  for (long i = 0; i < x.size(); ++i) {
    const double f = exact(double(x(0, i)));
    worst = std::fmax(worst, std::fabs(double(got(0, i)) - f) / allowed(e, f, x(0, i)));
  }
  return worst;
}

class FloatActivations : public ::testing::Test {
 protected:
  const Matrix x = sample(509, -5.7f, -5.5f);
  const Matrix ones = Matrix::Ones(1, x.cols());
};

}  // namespace

TEST_F(FloatActivations, GeluWithinItsEvaluationError) {
  Matrix got(1, x.cols());
  gelu(x, got);
  auto exact = [](double v) { return 0.5 * v * (1 + std::erf(v * M_SQRT1_2)); };
  EXPECT_LE(worst(x, got, exact, kGeluError), 1.0);
}

TEST_F(FloatActivations, GeluSlopeWithinItsEvaluationError) {
  Matrix got = ones;  // gelu_backward multiplies 1 by the slope: exactly the slope
  gelu_backward(x, got);
  auto exact = [](double v) {
    return 0.5 * (1 + std::erf(v * M_SQRT1_2)) + v * std::exp(-0.5 * v * v) / std::sqrt(2 * M_PI);
  };
  EXPECT_LE(worst(x, got, exact, kGeluSlopeError), 1.0);
}

TEST_F(FloatActivations, SiluAndItsSlopeWithinTheirEvaluationErrors) {
  Matrix forward(1, x.cols()), d_gate(1, x.cols()), d_up(1, x.cols());
  swiglu(x, ones, forward);                      // SiLU(a)·1
  swiglu_backward(x, ones, ones, d_gate, d_up);  // 1·1·SiLU'(a), and 1·SiLU(a)
  auto silu = [](double a) { return a * sigmoid(a); };
  auto slope = [](double a) { return sigmoid(a) * (1 + a * sigmoid(-a)); };
  EXPECT_LE(worst(x, forward, silu, kSiluError), 1.0);
  EXPECT_LE(worst(x, d_up, silu, kSiluError), 1.0);
  EXPECT_LE(worst(x, d_gate, slope, kSiluSlopeError), 1.0);
}

TEST_F(FloatActivations, NoNanOrInfinityForAnyFiniteInput) {
  Matrix big(1, 4);
  big << -1e30f, -100.0f, 100.0f, 3e38f;
  Matrix out(1, 4), d_gate(1, 4), d_up(1, 4), slope = Matrix::Ones(1, 4);
  gelu(big, out);
  EXPECT_TRUE(out.allFinite()) << out;
  gelu_backward(big, slope);
  EXPECT_TRUE(slope.allFinite()) << slope;
  swiglu(big, Matrix::Ones(1, 4), out);
  EXPECT_TRUE(out.allFinite()) << out;
  swiglu_backward(big, Matrix::Ones(1, 4), Matrix::Ones(1, 4), d_gate, d_up);
  EXPECT_TRUE(d_gate.allFinite() && d_up.allFinite()) << d_gate << " " << d_up;
}

TEST(Rounding, GammaIsNuOverOneMinusNu) {
  EXPECT_DOUBLE_EQ(gamma_n(1), u / (1 - u));
  EXPECT_DOUBLE_EQ(gamma_n(1000), 1000 * u / (1 - 1000 * u));
}

TEST(Rounding, ExactInputsLeaveOnlyTheEvaluationError) {
  MatrixD pre(1, 2);
  pre << 1.0, -2.0;
  MatrixD bound(1, 2), g(1, 2);
  activation_error(Activation::gelu, pre, MatrixD::Zero(1, 2), bound);
  exact_activate(Activation::gelu, pre, g);
  for (long i = 0; i < 2; ++i)
    EXPECT_DOUBLE_EQ(bound(0, i), allowed(kGeluError, g(0, i), pre(0, i)));
}

TEST(Rounding, InputErrorsGrowNoFasterThanTheSlope) {
  // SiLU's slope is at most 1.0999: an input error e carries at most 1.1·e, plus a little.
  MatrixD pre(1, 2), error(1, 2);
  pre << 2.4, 0.5;  // gate, up
  error << 1e-3, 0.0;
  MatrixD bound(1, 1);
  activation_error(Activation::swiglu, pre, error, bound);
  EXPECT_GT(bound(0, 0), 0.5 * 1.0998 * 1e-3);  // the slope at 2.4 is 1.0998, up is 0.5
  EXPECT_LT(bound(0, 0), 0.5 * 1.1 * 1e-3 + 1e-6);
}
