// linear_options: what a parallel linear layer is built for, besides its shape: a bias, a
// backward pass, how its products cut the rows, and where the partial sums it produces go.
#pragma once

#include "tp_mlp/chunking.hpp"

namespace tp_mlp {

struct LinearOptions {
  bool bias = false;
  bool backward = false;
  Chunking rows;        // the blocks of rows each product runs on
  int grad_blocks = 1;  // the weight gradient's blocks of columns (a progress test between)
  // A layer's partial sum over its inputs (a row-parallel layer's output, a column-parallel
  // one's input gradient) goes into a buffer of its own; or, block of rows by block of rows,
  // into the caller's, which sums several layers' (the --invariant schemes' F blocks).
  bool partials_to_caller = false;
};

}  // namespace tp_mlp
