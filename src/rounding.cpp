// rounding: the exact activation and the float error bounds (see rounding.hpp).
#include "tp_mlp/rounding.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "tp_mlp/bf16.hpp"

namespace tp_mlp {
namespace {

constexpr double u = kFloatUnitRoundoff;

// Bounds on the second derivative of each function the float code evaluates (GeLU, its
// slope, SiLU, its slope), computed once in quad precision: how far an input error bends it.
constexpr double kGeluCurvature = 0.7978845609;       // sup |GeLU''| = √(2/π), at 0
constexpr double kGeluSlopeCurvature = 0.7787696352;  // sup |GeLU'''|, at ±0.7923
constexpr double kSiluCurvature = 0.5;                // sup |SiLU''|, at 0
constexpr double kSiluSlopeCurvature = 0.3081815159;  // sup |SiLU'''|, at ±1.0320

double phi(double x) { return std::exp(-0.5 * x * x) / std::sqrt(2 * M_PI); }
double gelu(double x) { return 0.5 * x * (1.0 + std::erf(x * M_SQRT1_2)); }
double gelu_slope(double x) { return 0.5 * (1.0 + std::erf(x * M_SQRT1_2)) + x * phi(x); }
double gelu_curvature(double x) { return phi(x) * (2.0 - x * x); }
double sigmoid(double a) { return 1.0 / (1.0 + std::exp(-a)); }
double silu(double a) { return a * sigmoid(a); }
double silu_slope(double a) { return sigmoid(a) * (1.0 + a * sigmoid(-a)); }
double silu_curvature(double a) {
  const double s = sigmoid(a);
  return s * (1.0 - s) * (2.0 + a * (1.0 - 2.0 * s));
}

// Bound on |f̂(x̂) − f(x)| for |x̂ − x| ≤ dx: Taylor's |f'(x)|·dx + ½·sup|f''|·dx², and the float
// function's own error at x̂, where |f(x̂)| and |x̂| are at most |f(x)| and |x| plus their errors.
double function_error(double x, double f, double slope, double dx, double curvature,
                      EvaluationError e) {
  const double carried = std::abs(slope) * dx + 0.5 * curvature * dx * dx;
  double own = (e.rel * (std::abs(f) + carried) + e.abs) * u;
  if (e.per_input > 0)
    own = std::min(own, (e.per_input * (std::abs(x) + dx) + e.per_input_abs) * u);
  return carried + own;
}

// Calls f(r, c, c + w) for every element of an activation's output [rows, w] from its input
// [rows, p·w]: GeLU reads column c, SwiGLU its gate at c and its up projection at c + w.
template <typename F>
void for_each_output(const ConstMatrixDRef& pre, Activation activation, F f) {
  const long w = activation == Activation::gelu ? pre.cols() : pre.cols() / 2;
  for (long r = 0; r < pre.rows(); ++r)
    for (long c = 0; c < w; ++c) f(r, c, c + w);
}

}  // namespace

double gamma_n(long n) {
  const double nu = double(n) * u;
  return nu / (1 - nu);
}

double underflow(long terms, double factor) {
  return factor * double(terms) * double(std::numeric_limits<float>::min());
}

double underflow_factor(const Config& cfg) { return cfg.dtype == DType::bf16 ? 2 : 1; }

double input_roundoff(const Config& cfg) {
  return cfg.dtype == DType::bf16 ? kBf16UnitRoundoff : 0;
}

void rounded_input(double input, const ConstMatrixDRef& exact, MatrixDRef error) {
  error = (1 + input) * error + input * exact.cwiseAbs();
}

// A partial rounded once, then T − 1 additions each rounded to float and then to bf16.
double bf16_reduction(const Config& cfg) {
  if (cfg.reduction() != DType::bf16) return 0;
  const double per_step = kBf16UnitRoundoff + u * (1 + kBf16UnitRoundoff);
  const double steps = double(cfg.tp_size) * per_step;
  return steps / (1 - steps);
}

void exact_activate(Activation activation, const ConstMatrixDRef& pre, MatrixDRef act) {
  for_each_output(pre, activation, [&](long r, long c, long up) {
    act(r, c) = activation == Activation::gelu ? gelu(pre(r, c)) : silu(pre(r, c)) * pre(r, up);
  });
}

void exact_activate_backward(Activation activation, const ConstMatrixDRef& pre,
                             const ConstMatrixDRef& d_act, MatrixDRef d_pre) {
  for_each_output(pre, activation, [&](long r, long c, long up) {
    if (activation == Activation::gelu) {
      d_pre(r, c) = d_act(r, c) * gelu_slope(pre(r, c));
      return;
    }
    const double a = pre(r, c);
    d_pre(r, c) = d_act(r, c) * pre(r, up) * silu_slope(a);  // d gate
    d_pre(r, up) = d_act(r, c) * silu(a);                    // d up
  });
}

void activation_error(Activation activation, const ConstMatrixDRef& pre,
                      const ConstMatrixDRef& pre_error, MatrixDRef act_error) {
  for_each_output(pre, activation, [&](long r, long c, long up) {
    const double a = pre(r, c), da = pre_error(r, c);
    if (activation == Activation::gelu) {
      act_error(r, c) = function_error(a, gelu(a), gelu_slope(a), da, kGeluCurvature, kGeluError);
      return;
    }
    // act = SiLU(a)·b, computed as fl(SiLU(â)·b̂): one more rounding for the product.
    const double s = silu(a), b = std::abs(pre(r, up)), db = pre_error(r, up);
    const double ds = function_error(a, s, silu_slope(a), da, kSiluCurvature, kSiluError);
    const double b_max = b + db, s_max = std::abs(s) + ds;
    act_error(r, c) = ds * b_max + std::abs(s) * db + u * s_max * b_max;
  });
}

void activation_backward_error(Activation activation, const ConstMatrixDRef& pre,
                               const ConstMatrixDRef& pre_error, const ConstMatrixDRef& d_act,
                               const ConstMatrixDRef& d_act_error, MatrixDRef d_pre_error) {
  for_each_output(pre, activation, [&](long r, long c, long up) {
    const double g = std::abs(d_act(r, c)), dg = d_act_error(r, c), g_max = g + dg;
    const double a = pre(r, c), da = pre_error(r, c);
    if (activation == Activation::gelu) {
      // d_pre = fl(d̂act · ĝelu'(â)): one rounding.
      const double slope = gelu_slope(a);
      const double d_slope =
          function_error(a, slope, gelu_curvature(a), da, kGeluSlopeCurvature, kGeluSlopeError);
      const double slope_max = std::abs(slope) + d_slope;
      d_pre_error(r, c) = dg * slope_max + g * d_slope + u * g_max * slope_max;
      return;
    }
    const double b = std::abs(pre(r, up)), db = pre_error(r, up), b_max = b + db;
    // d_up = fl(d̂act · SiLU(â)): one rounding.
    const double s = silu(a);
    const double ds = function_error(a, s, silu_slope(a), da, kSiluCurvature, kSiluError);
    const double s_max = std::abs(s) + ds;
    // d_gate = fl(fl(d̂act · b̂) · SiLU'(â)): two roundings.
    const double slope = silu_slope(a);
    const double d_slope =
        function_error(a, slope, silu_curvature(a), da, kSiluSlopeCurvature, kSiluSlopeError);
    const double slope_max = std::abs(slope) + d_slope;
    constexpr double two_roundings = (1 + u) * (1 + u) - 1;
    d_pre_error(r, c) =
        (1 + two_roundings) * ((dg * b_max + g * db) * slope_max + g * b * d_slope) +
        two_roundings * g * b * std::abs(slope);
    d_pre_error(r, up) = dg * s_max + g * ds + u * g_max * s_max;
  });
}

}  // namespace tp_mlp
