// saved_tensors: the verification pass written out for anyone to check in NumPy, or against
// another framework's autograd:
//   y = act(x @ w1 + b1) @ w2 + b2, act = GeLU (exact erf form); for SwiGLU
//   y = (silu(x @ w1 + b1) * (x @ w3 + b3)) @ w2 + b2 (biases with --bias),
// with --block attention y = attention(x) of wq, wk, wv, wo (bq, bk, bv, bo), and with --block
// layer h = x + attention(norm1(x)), y = h + mlp(norm2(h)) of all of them and norm1_w, norm2_w
// (norm1_b, norm2_b for LayerNorm); and with --backward the gradients of sum(y * dy), each
// named d + its tensor's name (dwq, dnorm1_w, ...). Every tensor is the whole master-shaped
// tensor, float32 C order, the same at every TP size: weights are streamed from the generator
// and gradients gathered from the ranks' shards a block of rows at a time, so that saving
// needs no more memory than about one shard, like the reference.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "tp_mlp/config.hpp"
#include "tp_mlp/matrix.hpp"
#include "tp_mlp/mlp.hpp"
#include "tp_mlp/run.hpp"
#include "tp_mlp/workspace.hpp"

namespace tp_mlp {

// The files save_tensors writes into --save-tensors DIR, for checking them before the run.
std::vector<std::string> saved_tensor_names(const Config& cfg);

// What saving streams through, a block of rows at a time, about two shards each: taken from
// the workspace with the rest of the run, so that the memory check counts them.
class SaveBuffers {
 public:
  SaveBuffers(Workspace& ws, const Config& cfg, bool root);
  long capacity() const { return block_.size(); }
  Tensor<float> block(long rows, long cols);     // a master's block, or this rank's part
  Tensor<float> gathered(long rows, long cols);  // on rank 0: every rank's parts
  Tensor<float> chunk(long rows, long cols);     // on rank 0: the parts in place

 private:
  Tensor<float> block_, gathered_, chunk_;
};

// The first scheme's verification pass, as this rank holds it.
struct SavedPass {
  ConstMatrixRef x;   // [tokens, H]
  ConstMatrixRef y;   // [tokens, H], on world rank 0
  ConstMatrixRef dy;  // [tokens, H], empty without --backward
  ConstMatrixRef dx;  // [tokens, H], on world rank 0 with --backward
  // This rank's shard of the gradients, if it holds one of the group that is saved (the first
  // TP group's, or world rank 0's for the serial baseline): the MLP block's, or attention's
  // and the layer's by part (parts.attention alone for --block attention).
  std::optional<Gradients> gradients;
  std::optional<LayerGradients> parts;
  SaveBuffers& buffers;
};

// The tensors saved_tensor_names lists, as .npy files in --save-tensors DIR, all of them or,
// on any failure, none. Every rank calls it; world rank 0 writes.
void save_tensors(const Run& run, const SavedPass& pass);

}  // namespace tp_mlp
