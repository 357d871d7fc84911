// verify: an unsharded reference of the same model, and how far a scheme's output is from it.
//
// The reference shares nothing with the schemes but the master weights: it runs in double
// precision with std::erf, and splits its work across ranks by tokens (rows of X), not along
// the 4H dimension that the schemes shard, so a sharding or reduction bug cannot cancel out.
// It walks the 4H dimension in blocks of regenerated master weights, half a shard wide in
// double, so no rank needs more memory than about its own shard, at any size.
#pragma once

#include "tp_mlp/comm.hpp"
#include "tp_mlp/config.hpp"
#include "tp_mlp/tensor.hpp"

namespace tp_mlp {

// The reference output for this rank's share of the tokens.
struct ReferenceRows {
  long first_token = 0;
  MatrixD y;  // [my tokens, H]
};
ReferenceRows reference_forward(const Config& cfg, const Matrix& x, int part, int parts);

struct Verification {
  double max_abs_diff = 0;
  double max_rel_diff = 0;   // max_abs_diff / max |Y_ref|
  double tolerance = 0;      // on max_rel_diff
  long accumulated_terms = 0;
  bool passed = false;
};

// fp32 rounding grows at worst like n·u in a sum of n terms (u = 2^-24), and every output
// element accumulates n = H + 4H products: H in X·W1, 4H in GeLU(·)·W2.
double fp32_tolerance(const Config& cfg);

// Compares y [tokens, H] with the reference on every rank's rows; the verdict is global.
Verification compare(const Matrix& y, const ReferenceRows& ref, const Config& cfg,
                     const World& world);

}  // namespace tp_mlp
