// rounding: the activation in exact (float64) arithmetic, and how far float arithmetic may
// carry each element of the MLP from it, as bounds the float64 reference computes beside its
// values.
//
// The classic result (Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., §3.1):
// a sum of n terms, each a product rounded at most once, computed in any order, differs from
// the exact sum by at most γ_n·Σ|terms|, γ_n = n·u/(1 − n·u), u = 2⁻²⁴ for float. It holds
// element by element whatever the GEMM's blocking or the all-reduce's order, so a correct run
// can never exceed it, and it follows cancellation: where the terms cancel, Σ|terms| keeps the
// bound honest instead of the (small) result. Through the activation, errors grow by its
// slope at the exact input, plus half its curvature's bound times the input error squared
// (Taylor), plus the float function's own evaluation error (below). Every step bounds its
// inputs by |x̂| ≤ |x| + Δx, so no second-order term is dropped.
#pragma once

#include "tp_mlp/config.hpp"
#include "tp_mlp/matrix.hpp"

namespace tp_mlp {

inline constexpr double kFloatUnitRoundoff = 0x1p-24;
double gamma_n(long n);  // γ_n for float (glibc already has a gamma())

// What a float sum of n terms may also lose below the smallest normal float, times `factor`:
// the model's underflow_factor (bf16 dot products flush denormal products and sums alike:
// twice as much in a bf16 model).
double underflow(long terms, double factor = 1);
double underflow_factor(const Config& cfg);

// The model's element type's unit roundoff where a value is rounded to it to enter a GEMM (and
// where Y and dX leave as it): bf16's, or 0 for fp32, where nothing is rounded again.
double input_roundoff(const Config& cfg);
// A value within `error` of `exact`, rounded to a GEMM input with unit roundoff `input`.
void rounded_input(double input, const ConstMatrixDRef& exact, MatrixDRef error);
// The relative error of T partial sums rounded to bf16 and added in bf16 (--reduce-dtype
// bf16), as a factor of the sum of their magnitudes; 0 when they are reduced in fp32.
double bf16_reduction(const Config& cfg);

// A float function's evaluation error at an input x: |f̂(x) − f(x)| ≤ (rel·|f(x)| + abs)·u,
// or, where that is tighter, ≤ (per_input·|x| + per_input_abs)·u (0: no such form).
struct EvaluationError {
  double rel;
  double abs;
  double per_input = 0;
  double per_input_abs = 0;
};
// activation.cpp's float formulas, measured against float64 on every float with
// 2⁻³⁰ ≤ |x| < 256 and a dense sample of all others, Eigen's vector and scalar paths, with
// and without fused multiply-adds; rounded up. test_rounding.cpp holds the code to them. GeLU
// needs the large absolute term where erf(x/√2) → ±1 and 1 + erf cancels (Eigen's float erf
// errs by up to 7.4 ulp there), and the per-input form is tighter near 0.
inline constexpr EvaluationError kGeluError = {1.0, 20.6, 4.5, 1e-30};
inline constexpr EvaluationError kGeluSlopeError = {0.5, 3.72, 3.0, 1.0};
inline constexpr EvaluationError kSiluError = {3.01, 1e-6};      // a / (1 + e^-a)
inline constexpr EvaluationError kSiluSlopeError = {4.0, 0.57};  // σ(a)·(1 + a·σ(−a))

// The exact activation: act [rows, w] = act(pre [rows, p·w]) (see activation.hpp for the
// layout), element by element into buffers the caller owns.
void exact_activate(Activation activation, const ConstMatrixDRef& pre, MatrixDRef act);
// d_pre [rows, p·w] from d_act [rows, w]: the chain rule through the exact activation.
void exact_activate_backward(Activation activation, const ConstMatrixDRef& pre,
                             const ConstMatrixDRef& d_act, MatrixDRef d_pre);

// Bound on |act̂ − act| per element [rows, w], the float activation applied to inputs within
// pre_error of the exact pre.
void activation_error(Activation activation, const ConstMatrixDRef& pre,
                      const ConstMatrixDRef& pre_error, MatrixDRef act_error);
// Bound on |d̂pre − dpre| per element [rows, p·w], the float chain rule applied to inputs within
// pre_error and d_act_error of the exact pre and d_act.
void activation_backward_error(Activation activation, const ConstMatrixDRef& pre,
                               const ConstMatrixDRef& pre_error, const ConstMatrixDRef& d_act,
                               const ConstMatrixDRef& d_act_error, MatrixDRef d_pre_error);

}  // namespace tp_mlp
