// activation: GeLU with Eigen's vectorised float erf (see activation.hpp).
#include "tp_mlp/activation.hpp"

#include <cmath>

#include <unsupported/Eigen/SpecialFunctions>  // the vectorised erf

namespace tp_mlp {

void gelu(ConstMatrixRef h, MatrixRef out) {
  out.array() = 0.5f * h.array() * (1.0f + (h.array() * float(M_SQRT1_2)).erf());
}

void gelu_backward(ConstMatrixRef h, MatrixRef grad) {
  const float inv_sqrt_2pi = float(0.5 * M_2_SQRTPI * M_SQRT1_2);  // φ(0) = 1/√(2π)
  const auto x = h.array();
  grad.array() *= 0.5f * (1.0f + (x * float(M_SQRT1_2)).erf()) +  // Φ(h)
                  x * inv_sqrt_2pi * (-0.5f * x.square()).exp();  // h·φ(h)
}

}  // namespace tp_mlp
