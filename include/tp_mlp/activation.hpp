// activation: the MLP's nonlinearity and its derivative, in float, vectorised by Eigen.
#pragma once

#include "tp_mlp/matrix.hpp"

namespace tp_mlp {

// Exact GeLU, x·Φ(x) = x/2·(1 + erf(x/√2)): what torch.nn.functional.gelu computes by
// default (not the tanh approximation). `out` may be `h`.
void gelu(ConstMatrixRef h, MatrixRef out);
// grad ⊙= GeLU'(h) = Φ(h) + h·φ(h).
void gelu_backward(ConstMatrixRef h, MatrixRef grad);

}  // namespace tp_mlp
