// invariant_mlp: megatron-inv, megatron-sp-inv, megatron-overlap-inv and serial-inv, the
// --invariant schemes: the same wiring as parallel_mlp.hpp, and every output and gradient with
// the same bits at every TP size, uneven shards and any chunk count included.
//
// F is cut into fixed blocks (invariant_blocking.hpp), each rank holds whole blocks, and each
// block is a small MLP of its own, made of the same parts: a column-parallel layer [H, p·B]
// (gate and up side by side), its activation, a row-parallel layer [B, H]. Every product is a
// call of one shape and one set of strides, a tile of R rows of one block, whatever T is, so
// every block's partial sum of Y (and of dX) has the same bits at every T; the blocks' partial
// sums are then added exactly (exact_sum.hpp), on this rank and over the group, so where a block
// lives no longer matters. What sums over the tokens (the weight and bias gradients) is a
// product of one block with the same shape at every T. The first layer needs no care beyond
// its shape: its sum is over H, which every rank holds whole.
//
// The exact sum moves 64-bit integers (twice fp32's bytes) and a float per row for its grid;
// the blocks add a pass over [tokens, H] each to round their partial sums onto it. T is the
// element type of the weights and GEMM inputs, as in parallel_mlp.hpp.
#pragma once

#include <optional>

#include "tp_mlp/column_parallel_linear.hpp"
#include "tp_mlp/exact_sum.hpp"
#include "tp_mlp/invariant_blocking.hpp"
#include "tp_mlp/mlp.hpp"
#include "tp_mlp/region.hpp"
#include "tp_mlp/row_parallel_linear.hpp"

namespace tp_mlp {

template <typename T>
class InvariantMlp final : public MlpScheme {
 public:
  InvariantMlp(Workspace& ws, Scheme scheme, const Config& cfg, TpComm& tp, int chunks);

  Scheme scheme() const override { return scheme_; }
  Block tokens_here() const override { return tokens_; }
  long weight_bytes() const override;
  bool has_backward() const override { return backward_; }
  Gradients gradients() override;
  void plant_one_ulp() override { planted_ = true; }

  ConstMatrixRef forward(const ConstMatrixRef& x) override;
  ConstMatrixRef backward(const ConstMatrixRef& dy) override;

 private:
  struct FBlock;  // one block of F, a small MLP of its own; this rank's form a list
  // Tiles of rows [first, first + count), padded rows included, a tile at a time.
  template <typename Visit>
  void for_each_tile(Block rows, Visit visit) const;
  // Each row's largest |value| over every block of `of`, into row_max_.
  template <typename Of>
  void row_maxima(Block rows, Of of);
  // The forward: the first layer and the activation for every row, and their grid; then the
  // second layer's partial sums for rows of whole tiles, exactly added.
  void first_layer(const ConstRef<T>& x);
  void second_layer(Block rows);

  const Scheme scheme_;
  TpComm& tp_;
  const Activation activation_;
  const bool backward_;
  const long projections_;  // p: W1, and W3 for SwiGLU
  const long tokens_all_;   // every token, as the chunks cut them
  const InvariantBlocking blocking_;
  const Block columns_;                // this rank's whole blocks of F
  const Block tokens_;                 // the token rows x and y hold here
  const int chunks_;                   // the forward's token chunks (megatron-overlap-inv)
  RegionEntry<T> x_entry_, dy_entry_;  // f, f̄; g's and ḡ's backward: [padded rows, H]
  FBlock* blocks_ = nullptr;
  Tensor<float> tile_;       // [R, H]: one block's partial sums of one tile
  Tensor<float> row_max_;    // [padded rows, 1]: the grid's inputs
  ExactSum y_sum_, dx_sum_;  // g, ḡ; f's and f̄'s backward
  Tensor<float> b2_, db2_;   // [1, H], added once after the sum; its gradient
  // The gradients in the layout Gradients promises ([dW1 | dW3] of the shard), gathered from
  // the blocks when asked: [H, p·F/T], [F/T, H], [1, p·F/T].
  Tensor<float> dw_in_, dw2_, db_in_;
  double w_in_max_ = 0, w2_max_ = 0;  // the largest |weight| of the whole model, for the grids
  std::optional<ConstRef<T>> x_;      // the forward's whole input, kept for dW_in
  bool planted_ = false;              // one-ulp
};

}  // namespace tp_mlp
