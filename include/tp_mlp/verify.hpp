// verify: an unsharded reference of the same model, and how far a scheme's results are from it.
//
// The reference shares nothing with the schemes but the master tensors: it runs in double
// precision with std::erf and std::exp, and splits its work by tokens (rows of X), not along
// the 4H dimension the schemes shard, so a sharding or reduction bug cannot cancel out. It
// walks the 4H dimension in blocks of regenerated master weights, half a shard wide in
// double, so no rank needs more memory than about its own shard, at any size.
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

// The reference Y and, given dY, dX for token rows [first_token, first_token + rows).
struct ReferenceRows {
  long first_token = 0;
  MatrixD y;   // [rows, H]
  MatrixD dx;  // [rows, H], empty without dY
};
// x and dy (empty: no backward) hold all tokens.
ReferenceRows reference_rows(const Config& cfg, const Matrix& x, const Matrix& dy, Block rows);
// The most it allocates on one rank, for `rows` token rows, with the gradient check.
double reference_bytes(const Config& cfg, long rows);

// fp32 rounding grows at worst like n·u in a sum of n terms (u = 2^-24); n is the number of
// fp32 products accumulated along the longest path to an element of the tensor.
double fp32_tolerance(long accumulated_terms);

// Y on the rows this rank holds; the verdict is global.
Verification verify_output(const Matrix& y, long first_token, const ReferenceRows& ref,
                           const Config& cfg, const World& world);

// dX, dW1, dW2 (and db1, db2 with --bias) of one scheme: dX on the reference's rows, the
// weight gradients on each rank's shard (a rank that holds none, as when world rank 0 alone
// computes the serial baseline, passes no shard).
std::vector<Verification> verify_gradients(const Matrix& dx, long first_token,
                                           const std::optional<Gradients>& shard,
                                           const ReferenceRows& ref, const Matrix& x,
                                           const Matrix& dy, const Config& cfg, const World& world);

}  // namespace tp_mlp
