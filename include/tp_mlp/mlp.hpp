// mlp: the MLP block Y = GeLU(X·W1)·W2, computed three ways from the same master weights.
//
//   megatron  W1 split by columns, W2 by rows. Column-parallel W1 leaves every rank whole
//             columns of the pre-activation, so GeLU is local; row-parallel W2 takes exactly
//             those columns as its input. One all-reduce of [tokens, H] per forward.
//   naive     W1 and W2 both split by rows (over H, then over 4H). Each rank's X·W1 is only a
//             partial sum, and GeLU is not linear, so the [tokens, 4H] pre-activation must be
//             all-reduced before GeLU; then a second all-reduce of [tokens, H]: 5x the bytes.
//   serial    the whole MLP on one rank, no communication: the baseline for speed-up.
//
// All buffers are allocated by the constructors; forward() allocates nothing.
#pragma once

#include <memory>

#include "tp_mlp/comm.hpp"
#include "tp_mlp/config.hpp"
#include "tp_mlp/tensor.hpp"

namespace tp_mlp {

// Exact GeLU, x·Φ(x) = x/2·(1 + erf(x/√2)): what torch.nn.functional.gelu computes by
// default (not the tanh approximation).
void gelu_in_place(MatrixRef h);

class MlpScheme {
 public:
  virtual ~MlpScheme() = default;
  virtual Scheme scheme() const = 0;
  virtual const Matrix& forward(const Matrix& x) = 0;  // x [tokens, H] -> y [tokens, H]
  virtual long weight_bytes() const = 0;               // this rank's share of W1 and W2
};

// Builds `scheme` for this rank's place in `tp` (tp is kept for the forward passes).
std::unique_ptr<MlpScheme> make_scheme(Scheme scheme, const Config& cfg, TpComm& tp);

}  // namespace tp_mlp
