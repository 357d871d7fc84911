// rope: rotary position embedding, exactly as Hugging Face's LLaMA applies it to queries and
// keys (apply_rotary_pos_emb with rotate_half). Each head's d features form d/2 pairs
// (i, i + d/2), the first half against the second, not neighbours (GPT-NeoX's layout, not the
// RoPE paper's interleaved one); pair i of the token at position p turns by the angle
// p·θ^(−2i/d):
//
//   x1' = x1·cos − x2·sin,   x2' = x2·cos + x1·sin   (x1 = x[i], x2 = x[i + d/2]).
//
// A token's position is its row mod seq_len: the rows hold whole sequences one after another.
// The rotation is linear and orthogonal, so the gradient of its input is the output's gradient
// turned back by the same angle (Rᵀ = R⁻¹), and the backward needs nothing kept from the
// forward. The head size d must be even, for the pairs; the caller validates it.
#pragma once

#include "tp_mlp/matrix.hpp"
#include "tp_mlp/workspace.hpp"

namespace tp_mlp {

class Rope {
 public:
  // The tables for positions 0..seq_len − 1 and heads of head_dim features, θ = theta
  // (10000 in LLaMA 1 and 2). Filled on a real workspace only.
  Rope(Workspace& ws, long seq_len, long head_dim, double theta);

  // x [tokens, heads·d], each head rotated in place by its token's position.
  void forward(MatrixRef x) const;
  // grad [tokens, heads·d]: the forward output's gradient becomes its input's, in place.
  void backward(MatrixRef grad) const;

 private:
  // Every head of every row of x turned by its angle, times `direction` (+1 or −1: an exact
  // change of sin's sign).
  void rotate(MatrixRef x, float direction) const;

  const long seq_len_, head_dim_;
  Tensor<float> cos_;  // [seq_len, d/2]: cos(p·θ^(−2i/d)), computed in double, rounded once
  Tensor<float> sin_;  // [seq_len, d/2]
};

}  // namespace tp_mlp
