// verify: an unsharded reference of the same model, and how far a scheme's results are from it.
//
// The reference shares nothing with the schemes but the master tensors: it runs in double
// precision with std::erf and std::exp, and splits its work by tokens (rows of X), not along
// the 4H dimension the schemes shard, so a sharding or reduction bug cannot cancel out. It
// walks the 4H dimension in blocks of regenerated master weights, half a shard wide in
// double, so no rank needs more memory than about its own shard, at any size.
#pragma once

#include <string>
#include <vector>

#include "tp_mlp/comm.hpp"
#include "tp_mlp/config.hpp"
#include "tp_mlp/mlp.hpp"
#include "tp_mlp/tensor.hpp"

namespace tp_mlp {

// The reference Y and, given dY, dX for token rows [first_token, first_token + rows).
struct ReferenceRows {
  long first_token = 0;
  MatrixD y;   // [rows, H]
  MatrixD dx;  // [rows, H], empty without dY
};
// x and dy (empty: no backward) hold all tokens.
ReferenceRows reference_rows(const Config& cfg, const Matrix& x, const Matrix& dy,
                             long first_token, long rows);

struct Verification {
  std::string tensor;       // "Y", "dX", "dW1", ...
  double max_abs_diff = 0;
  double max_rel_diff = 0;  // max_abs_diff / max |reference|
  double tolerance = 0;     // on max_rel_diff
  long accumulated_terms = 0;
  bool passed = false;
};

// fp32 rounding grows at worst like n·u in a sum of n terms (u = 2^-24); n is the number of
// fp32 products accumulated along the longest path to an element of the tensor.
double fp32_tolerance(long accumulated_terms);

// Y on the rows this rank holds; the verdict is global.
Verification verify_output(const Matrix& y, long first_token, const ReferenceRows& ref,
                           const Config& cfg, const World& world);

// dX, dW1, dW2 (and db1, db2 with --bias) of one scheme: dX on the reference's rows, the
// weight gradients on each rank's shard (ranks without one pass `grads` with null pointers).
std::vector<Verification> verify_gradients(const Matrix& dx, long first_token,
                                           const Gradients& grads, const ReferenceRows& ref,
                                           const Matrix& x, const Matrix& dy, const Config& cfg,
                                           const World& world);

}  // namespace tp_mlp
