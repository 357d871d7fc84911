// rounding: the exact activation and the float error bounds (see rounding.hpp).
#include "tp_mlp/rounding.hpp"

#include <cmath>

#include <unsupported/Eigen/SpecialFunctions>  // erf on arrays

namespace tp_mlp {
namespace {

using ArrayD = Eigen::ArrayXXd;

constexpr double u = kFloatUnitRoundoff;

// Bounds on the second derivative of each function the float code evaluates (GeLU, its
// slope, SiLU, its slope), computed once in quad precision: how far an input error bends it.
constexpr double kGeluCurvature = 0.7978845609;       // sup |GeLU''| = √(2/π), at 0
constexpr double kGeluSlopeCurvature = 0.7787696352;  // sup |GeLU'''|, at ±0.7923
constexpr double kSiluCurvature = 0.5;                // sup |SiLU''|, at 0
constexpr double kSiluSlopeCurvature = 0.3081815159;  // sup |SiLU'''|, at ±1.0320

ArrayD phi(const ArrayD& x) { return (-0.5 * x.square()).exp() / std::sqrt(2 * M_PI); }
ArrayD gelu(const ArrayD& x) { return 0.5 * x * (1.0 + (x * M_SQRT1_2).erf()); }
ArrayD gelu_slope(const ArrayD& x) { return 0.5 * (1.0 + (x * M_SQRT1_2).erf()) + x * phi(x); }
ArrayD gelu_curvature(const ArrayD& x) { return phi(x) * (2.0 - x.square()); }
ArrayD sigmoid(const ArrayD& a) { return 1.0 / (1.0 + (-a).exp()); }
ArrayD silu(const ArrayD& a) { return a * sigmoid(a); }
ArrayD silu_slope(const ArrayD& a) { return sigmoid(a) * (1.0 + a * sigmoid(-a)); }
ArrayD silu_curvature(const ArrayD& a) {
  const ArrayD s = sigmoid(a);
  return s * (1.0 - s) * (2.0 + a * (1.0 - 2.0 * s));
}

// Bound on |f̂(x̂) − f(x)| for |x̂ − x| ≤ dx: Taylor's |f'(x)|·dx + ½·sup|f''|·dx², and the float
// function's own error at x̂, where |f(x̂)| and |x̂| are at most |f(x)| and |x| plus their errors.
ArrayD function_error(const ArrayD& x, const ArrayD& f, const ArrayD& slope, const ArrayD& dx,
                      double curvature, EvaluationError e) {
  const ArrayD carried = slope.abs() * dx + 0.5 * curvature * dx.square();
  ArrayD own = (e.rel * (f.abs() + carried) + e.abs) * u;
  if (e.per_input > 0) own = own.min((e.per_input * (x.abs() + dx) + e.per_input_abs) * u);
  return carried + own;
}

}  // namespace

double gamma_n(long n) {
  const double nu = double(n) * u;
  return nu / (1 - nu);
}

MatrixD exact_activate(Activation activation, const MatrixD& pre) {
  if (activation == Activation::gelu) return gelu(pre.array()).matrix();
  const long w = pre.cols() / 2;
  return (silu(pre.leftCols(w).array()) * pre.rightCols(w).array()).matrix();
}

MatrixD exact_activate_backward(Activation activation, const MatrixD& pre, const MatrixD& d_act) {
  if (activation == Activation::gelu) return (d_act.array() * gelu_slope(pre.array())).matrix();
  const long w = pre.cols() / 2;
  const ArrayD a = pre.leftCols(w).array(), c = pre.rightCols(w).array();
  MatrixD d_pre(pre.rows(), pre.cols());
  d_pre.leftCols(w) = (d_act.array() * c * silu_slope(a)).matrix();  // d gate
  d_pre.rightCols(w) = (d_act.array() * silu(a)).matrix();           // d up
  return d_pre;
}

MatrixD activation_error(Activation activation, const MatrixD& pre, const MatrixD& pre_error) {
  if (activation == Activation::gelu) {
    const ArrayD x = pre.array();
    return function_error(x, gelu(x), gelu_slope(x), pre_error.array(), kGeluCurvature, kGeluError)
        .matrix();
  }
  // act = SiLU(a)·c, computed as fl(SiLU(â)·ĉ): one more rounding for the product.
  const long w = pre.cols() / 2;
  const ArrayD a = pre.leftCols(w).array(), c = pre.rightCols(w).array();
  const ArrayD da = pre_error.leftCols(w).array(), dc = pre_error.rightCols(w).array();
  const ArrayD s = silu(a);
  const ArrayD ds = function_error(a, s, silu_slope(a), da, kSiluCurvature, kSiluError);
  const ArrayD c_max = c.abs() + dc, s_max = s.abs() + ds;
  return (ds * c_max + s.abs() * dc + u * s_max * c_max).matrix();
}

MatrixD activation_backward_error(Activation activation, const MatrixD& pre,
                                  const MatrixD& pre_error, const MatrixD& d_act,
                                  const MatrixD& d_act_error) {
  const ArrayD g = d_act.array().abs(), dg = d_act_error.array(), g_max = g + dg;
  if (activation == Activation::gelu) {
    // d_pre = fl(d̂act · ĝelu'(ĥ)): one rounding.
    const ArrayD x = pre.array(), slope = gelu_slope(x);
    const ArrayD d_slope = function_error(x, slope, gelu_curvature(x), pre_error.array(),
                                          kGeluSlopeCurvature, kGeluSlopeError);
    const ArrayD slope_max = slope.abs() + d_slope;
    return (dg * slope_max + g * d_slope + u * g_max * slope_max).matrix();
  }
  const long w = pre.cols() / 2;
  const ArrayD a = pre.leftCols(w).array(), c = pre.rightCols(w).array();
  const ArrayD da = pre_error.leftCols(w).array(), dc = pre_error.rightCols(w).array();
  const ArrayD c_max = c.abs() + dc;
  // d_up = fl(d̂act · SiLU(â)): one rounding.
  const ArrayD s = silu(a);
  const ArrayD ds = function_error(a, s, silu_slope(a), da, kSiluCurvature, kSiluError);
  const ArrayD s_max = s.abs() + ds;
  // d_gate = fl(fl(d̂act · ĉ) · SiLU'(â)): two roundings.
  const ArrayD slope = silu_slope(a);
  const ArrayD d_slope =
      function_error(a, slope, silu_curvature(a), da, kSiluSlopeCurvature, kSiluSlopeError);
  const ArrayD slope_max = slope.abs() + d_slope;
  constexpr double two_roundings = (1 + u) * (1 + u) - 1;
  MatrixD bound(pre.rows(), pre.cols());
  bound.leftCols(w) =
      ((1 + two_roundings) * ((dg * c_max + g * dc) * slope_max + g * c.abs() * d_slope) +
       two_roundings * g * c.abs() * slope.abs())
          .matrix();
  bound.rightCols(w) = (dg * s_max + g * ds + u * g_max * s_max).matrix();
  return bound;
}

}  // namespace tp_mlp
