// activation: GeLU with Eigen's vectorised float erf, SwiGLU with its exp (see activation.hpp).
#include "tp_mlp/activation.hpp"

#include <cmath>

#include <unsupported/Eigen/SpecialFunctions>  // the vectorised erf

namespace tp_mlp {

void activate(Activation activation, const ConstMatrixRef& pre, MatrixRef out) {
  const long width = out.cols();
  if (activation == Activation::gelu) {
    gelu(pre, out);
    return;
  }
  swiglu(pre.leftCols(width), pre.rightCols(width), out);
}

void activate_backward(Activation activation, const ConstMatrixRef& pre,
                       const ConstMatrixRef& d_out, MatrixRef d_pre) {
  const long width = d_out.cols();
  if (activation == Activation::gelu) {
    d_pre = d_out;
    gelu_backward(pre, d_pre);
    return;
  }
  swiglu_backward(pre.leftCols(width), pre.rightCols(width), d_out, d_pre.leftCols(width),
                  d_pre.rightCols(width));
}

void gelu(const ConstMatrixRef& h, MatrixRef out) {
  out.array() = 0.5f * h.array() * (1.0f + (h.array() * float(M_SQRT1_2)).erf());
}

void gelu_backward(const ConstMatrixRef& h, MatrixRef grad) {
  const float inv_sqrt_2pi = float(0.5 * M_2_SQRTPI * M_SQRT1_2);  // φ(0) = 1/√(2π)
  const auto x = h.array();
  grad.array() *= 0.5f * (1.0f + (x * float(M_SQRT1_2)).erf()) +  // Φ(h)
                  x * inv_sqrt_2pi * (-0.5f * x.square()).exp();  // h·φ(h)
}

// a / (1 + e^-a) rather than a·σ(a): one division, and for very negative a, e^-a overflows to
// infinity and the quotient to -0, the right limit, with no NaN.
void swiglu(const ConstMatrixRef& gate, const ConstMatrixRef& up, MatrixRef out) {
  const auto a = gate.array();
  out.array() = a / (1.0f + (-a).exp()) * up.array();
}

// SiLU and SiLU' are each evaluated as one value, SiLU as in the forward, and then multiplied
// in: the float error model in rounding.hpp counts exactly these roundings. SiLU' is written
// σ(a)·(1 + a·σ(−a)) rather than σ(a)·(1 + a·(1 − σ(a))), whose 1 − σ cancels to 16 ulp of error
// for large a. e^-a is computed once, into d_gate, overwritten element by element only after
// it has been read.
void swiglu_backward(const ConstMatrixRef& gate, const ConstMatrixRef& up,
                     const ConstMatrixRef& d_out, MatrixRef d_gate, MatrixRef d_up) {
  const auto a = gate.array();
  auto e = d_gate.array();
  e = (-a).exp();
  d_up.array() = d_out.array() * (a / (1.0f + e));
  const auto slope = (1.0f / (1.0f + e)) * (1.0f + a * (1.0f / (1.0f + a.exp())));
  d_gate.array() = d_out.array() * up.array() * slope;
}

}  // namespace tp_mlp
