// activation: the MLP's nonlinearity and its derivative, in float, vectorised by Eigen.
//
// The first linear layer produces the activation's inputs side by side, [tokens, p·width]:
// GeLU takes one pre-activation (X·W1); SwiGLU takes two, [gate | up] = [X·W1 | X·W3], as
// Megatron-LM fuses them per rank so that one GEMM makes both. Either produces [tokens, width].
#pragma once

#include "tp_mlp/config.hpp"
#include "tp_mlp/matrix.hpp"

namespace tp_mlp {

// out [tokens, width] = act(pre [tokens, p·width]).
void activate(Activation activation, const ConstMatrixRef& pre, MatrixRef out);
// d_pre [tokens, p·width] = d_out [tokens, width] ⊙ act'(pre), the chain rule through act.
void activate_backward(Activation activation, const ConstMatrixRef& pre,
                       const ConstMatrixRef& d_out, MatrixRef d_pre);

// Exact GeLU, x·Φ(x) = x/2·(1 + erf(x/√2)): what torch.nn.functional.gelu computes by
// default (not the tanh approximation). `out` may be `h`.
void gelu(const ConstMatrixRef& h, MatrixRef out);
// grad ⊙= GeLU'(h) = Φ(h) + h·φ(h).
void gelu_backward(const ConstMatrixRef& h, MatrixRef grad);

// SwiGLU, LLaMA's gate: out = SiLU(gate) ⊙ up, SiLU(a) = a·σ(a) = a / (1 + e^-a).
void swiglu(const ConstMatrixRef& gate, const ConstMatrixRef& up, MatrixRef out);
// d_gate = d_out ⊙ up ⊙ SiLU'(gate), SiLU'(a) = σ(a)·(1 + a·σ(−a)); d_up = d_out ⊙ SiLU(gate).
void swiglu_backward(const ConstMatrixRef& gate, const ConstMatrixRef& up,
                     const ConstMatrixRef& d_out, MatrixRef d_gate, MatrixRef d_up);

}  // namespace tp_mlp
