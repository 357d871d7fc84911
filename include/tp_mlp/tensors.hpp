// tensors: the verification pass written out for anyone to check in NumPy:
//   y = gelu(x @ w1) @ w2, with gelu the exact erf form.
#pragma once

#include <string>

#include "tp_mlp/config.hpp"
#include "tp_mlp/tensor.hpp"

namespace tp_mlp {

// x.npy [b, s, H], w1.npy [H, 4H], w2.npy [4H, H], y.npy [b, s, H] in `cfg.tensors_dir`.
// The full master weights are streamed from the generator block by block, so saving needs
// no more memory than one shard, like the reference.
void save_tensors(const Config& cfg, const Matrix& x, const Matrix& y);

}  // namespace tp_mlp
