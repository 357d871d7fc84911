// saved_tensors: the verification pass written out for anyone to check in NumPy:
//   y = gelu(x @ w1 + b1) @ w2 + b2, with gelu the exact erf form (biases with --bias).
#pragma once

#include <string>
#include <vector>

#include "tp_mlp/config.hpp"
#include "tp_mlp/matrix.hpp"

namespace tp_mlp {

// The files save_tensors writes into --save-tensors DIR, for checking them before the run.
std::vector<std::string> saved_tensor_names(const Config& cfg);

// x.npy [b, s, H], w1.npy [H, 4H], w2.npy [4H, H], y.npy [b, s, H] in `cfg.tensors_dir`,
// and with --bias b1.npy [1, 4H], b2.npy [1, H]: all of them or, on any failure, none.
// The full master weights are streamed from the generator block by block, so saving needs
// no more memory than one shard, like the reference.
void save_tensors(const Config& cfg, const Matrix& x, const Matrix& y);

}  // namespace tp_mlp
