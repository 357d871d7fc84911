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
// Lipschitz constant, plus the float function's own evaluation error, measured once for every
// float in [-20, 20] and checked by a unit test (test_rounding.cpp). Every step bounds its
// inputs by |x̂| ≤ |x| + Δx, so no second-order term is dropped.
#pragma once

#include "tp_mlp/config.hpp"
#include "tp_mlp/matrix.hpp"

namespace tp_mlp {

inline constexpr double kFloatUnitRoundoff = 0x1p-24;
double gamma(long n);  // γ_n for float

// A float function's evaluation error: |f̂(x) − f(x)| ≤ (rel·|f(x)| + abs)·u.
struct EvaluationError {
  double rel;
  double abs;
};
// As activation.cpp computes them (its test holds them to these).
inline constexpr EvaluationError kGeluError = {8, 4};
inline constexpr EvaluationError kGeluDerivativeError = {8, 4};
inline constexpr EvaluationError kSiluError = {8, 4};
inline constexpr EvaluationError kSiluDerivativeError = {8, 4};

// The exact activation: pre [rows, p·w] -> [rows, w] (see activation.hpp for the layout).
MatrixD exact_activate(Activation activation, const MatrixD& pre);
// d_pre [rows, p·w] from d_act [rows, w]: the chain rule through the exact activation.
MatrixD exact_activate_backward(Activation activation, const MatrixD& pre, const MatrixD& d_act);

// Bound on |act̂ − act| per element [rows, w], the float activation applied to inputs within
// pre_error of the exact pre.
MatrixD activation_error(Activation activation, const MatrixD& pre, const MatrixD& pre_error);
// Bound on |d̂pre − dpre| per element [rows, p·w], the float chain rule applied to inputs within
// pre_error and d_act_error of the exact pre and d_act.
MatrixD activation_backward_error(Activation activation, const MatrixD& pre,
                                  const MatrixD& pre_error, const MatrixD& d_act,
                                  const MatrixD& d_act_error);

}  // namespace tp_mlp
