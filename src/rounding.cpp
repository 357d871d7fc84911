// rounding: the exact activation and the float error bounds (see rounding.hpp).
#include "tp_mlp/rounding.hpp"

#include <cmath>

#include <unsupported/Eigen/SpecialFunctions>  // erf on arrays

namespace tp_mlp {
namespace {

using ArrayD = Eigen::ArrayXXd;

constexpr double u = kFloatUnitRoundoff;

// Suprema of the activations' derivatives, which bound how far an input error carries.
constexpr double kGeluSlope = 1.1290;      // sup |Φ(x) + x·φ(x)|, at x = √2
constexpr double kGeluCurvature = 0.7979;  // sup |φ(x)·(2 − x²)| = 2·φ(0)
constexpr double kSiluSlope = 1.0999;      // sup |σ(a)·(1 + a·(1 − σ(a)))|, near a = 2.40
constexpr double kSiluCurvature = 0.5;     // sup |σ'(a)·(2 + a·(1 − 2σ(a)))| = 2·σ'(0)

ArrayD gelu(const ArrayD& x) { return 0.5 * x * (1.0 + (x * M_SQRT1_2).erf()); }
ArrayD gelu_slope(const ArrayD& x) {  // Φ(x) + x·φ(x)
  return 0.5 * (1.0 + (x * M_SQRT1_2).erf()) + x * (-0.5 * x.square()).exp() / std::sqrt(2 * M_PI);
}
ArrayD sigmoid(const ArrayD& a) { return 1.0 / (1.0 + (-a).exp()); }
ArrayD silu_slope(const ArrayD& a) {
  const ArrayD s = sigmoid(a);
  return s * (1.0 + a * (1.0 - s));
}

// Bound on |f̂(x̂) − f(x)| for |x̂ − x| ≤ dx: the slope carries dx, and the float function
// errs by its own evaluation error at x̂, where |f(x̂)| ≤ |f(x)| + slope·dx.
ArrayD function_error(const ArrayD& f, const ArrayD& dx, double slope, EvaluationError e) {
  const ArrayD carried = slope * dx;
  return carried + (e.rel * (f.abs() + carried) + e.abs) * u;
}

}  // namespace

double gamma(long n) {
  const double nu = double(n) * u;
  return nu / (1 - nu);
}

MatrixD exact_activate(Activation activation, const MatrixD& pre) {
  if (activation == Activation::gelu) return gelu(pre.array()).matrix();
  const long w = pre.cols() / 2;
  const ArrayD a = pre.leftCols(w).array(), c = pre.rightCols(w).array();
  return (a * sigmoid(a) * c).matrix();
}

MatrixD exact_activate_backward(Activation activation, const MatrixD& pre, const MatrixD& d_act) {
  if (activation == Activation::gelu) return (d_act.array() * gelu_slope(pre.array())).matrix();
  const long w = pre.cols() / 2;
  const ArrayD a = pre.leftCols(w).array(), c = pre.rightCols(w).array();
  MatrixD d_pre(pre.rows(), pre.cols());
  d_pre.leftCols(w) = (d_act.array() * c * silu_slope(a)).matrix();  // d gate
  d_pre.rightCols(w) = (d_act.array() * a * sigmoid(a)).matrix();    // d up
  return d_pre;
}

MatrixD activation_error(Activation activation, const MatrixD& pre, const MatrixD& pre_error) {
  if (activation == Activation::gelu)
    return function_error(gelu(pre.array()), pre_error.array(), kGeluSlope, kGeluError).matrix();
  // act = SiLU(a)·c, computed as fl(SiLU(â)·ĉ): one more rounding for the product.
  const long w = pre.cols() / 2;
  const ArrayD a = pre.leftCols(w).array(), c = pre.rightCols(w).array();
  const ArrayD da = pre_error.leftCols(w).array(), dc = pre_error.rightCols(w).array();
  const ArrayD silu = a * sigmoid(a);
  const ArrayD d_silu = function_error(silu, da, kSiluSlope, kSiluError);
  const ArrayD c_max = c.abs() + dc, silu_max = silu.abs() + d_silu;
  return (d_silu * c_max + silu.abs() * dc + u * silu_max * c_max).matrix();
}

MatrixD activation_backward_error(Activation activation, const MatrixD& pre,
                                  const MatrixD& pre_error, const MatrixD& d_act,
                                  const MatrixD& d_act_error) {
  const ArrayD g = d_act.array().abs(), dg = d_act_error.array(), g_max = g + dg;
  if (activation == Activation::gelu) {
    // d_pre = fl(d̂act · ĝelu'(ĥ)).
    const ArrayD slope = gelu_slope(pre.array());
    const ArrayD d_slope =
        function_error(slope, pre_error.array(), kGeluCurvature, kGeluDerivativeError);
    const ArrayD slope_max = slope.abs() + d_slope;
    return (dg * slope_max + g * d_slope + u * g_max * slope_max).matrix();
  }
  const long w = pre.cols() / 2;
  const ArrayD a = pre.leftCols(w).array(), c = pre.rightCols(w).array();
  const ArrayD da = pre_error.leftCols(w).array(), dc = pre_error.rightCols(w).array();
  const ArrayD c_max = c.abs() + dc;
  // d_up = fl(d̂act · SiLU(â)): one rounding.
  const ArrayD silu = a * sigmoid(a);
  const ArrayD d_silu = function_error(silu, da, kSiluSlope, kSiluError);
  const ArrayD silu_max = silu.abs() + d_silu;
  // d_gate = fl(fl(d̂act · ĉ) · SiLU'(â)): two roundings.
  const ArrayD slope = silu_slope(a);
  const ArrayD d_slope = function_error(slope, da, kSiluCurvature, kSiluDerivativeError);
  const ArrayD slope_max = slope.abs() + d_slope;
  MatrixD bound(pre.rows(), pre.cols());
  bound.leftCols(w) = ((dg * c_max + g * dc) * slope_max + g * c.abs() * d_slope +
                       2 * u * g_max * c_max * slope_max)
                          .matrix();
  bound.rightCols(w) = (dg * silu_max + g * d_silu + u * g_max * silu_max).matrix();
  return bound;
}

}  // namespace tp_mlp
