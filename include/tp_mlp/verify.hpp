// verify: an unsharded reference of the same model, and how far a scheme's results are from it.
//
// The reference shares nothing with the schemes but the master tensors: it runs in double
// precision with std::erf and std::exp, and splits its work by tokens (rows of X), not along
// the F dimension the schemes shard, so a sharding or reduction bug cannot cancel out. It
// walks F in blocks of regenerated master weights, half a shard wide, so no rank needs more
// memory than about its own shard, at any size. Beside every value it computes a rigorous
// bound on the float error of that element (rounding.hpp); an element passes when it is
// within its own bound, and a tensor when every element does.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "tp_mlp/comm.hpp"
#include "tp_mlp/config.hpp"
#include "tp_mlp/matrix.hpp"
#include "tp_mlp/mlp.hpp"
#include "tp_mlp/partition.hpp"
#include "tp_mlp/results.hpp"

namespace tp_mlp {

// The reference Y and, given dY, dX for the token rows `rows`, with their error bounds.
struct ReferenceRows {
  Block rows;
  MatrixD y, y_bound;    // [rows, H]
  MatrixD dx, dx_bound;  // [rows, H], empty without dY
  // [rows, H] when the naive scheme sums its pre-activation in bf16 (and so may err more),
  // else empty.
  MatrixD y_bound_naive;
};
// x and dy (empty: no backward) hold all tokens.
ReferenceRows reference_rows(const Config& cfg, const Matrix& x, const Matrix& dy, Block rows);
// The most it allocates on one rank, for `rows` token rows, with the gradient check.
double reference_bytes(const Config& cfg, long rows);

// `scheme`'s Y, held for the token rows `held`, on the reference's rows; the verdict is global.
Verification verify_output(Scheme scheme, const Matrix& y, Block held, const ReferenceRows& ref,
                           const Config& cfg, const World& world);

// dX, and the first layer's and W2's gradients (and the biases' with --bias) of one scheme:
// dX on the reference's rows, the weight gradients on each rank's shard (a rank that holds
// none, as when world rank 0 alone computes the serial baseline, passes no shard).
std::vector<Verification> verify_gradients(const Matrix& dx, Block held,
                                           const std::optional<Gradients>& shard,
                                           const ReferenceRows& ref, const Matrix& x,
                                           const Matrix& dy, const Config& cfg, const World& world);

}  // namespace tp_mlp
