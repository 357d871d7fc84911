// digest: a 64-bit fingerprint of a tensor's bits, to show at a glance that two runs computed
// the same bits, and to test it. Each element contributes a mix of its place in the whole
// (master-shaped) tensor and its 32 bits, and the contributions are added modulo 2^64: the
// digest does not depend on how the tensor is cut into pieces or in which order they are
// added, so a sharded gradient's digest is the sum of its shards', and equals the digest of
// the same tensor held whole on one rank.
#pragma once

#include <cstdint>

#include "tp_mlp/matrix.hpp"

namespace tp_mlp {

// The contribution of `piece`, which sits at (first_row, first_col) of a tensor `cols` wide.
std::uint64_t digest(const ConstMatrixRef& piece, long first_row, long first_col, long cols);

}  // namespace tp_mlp
