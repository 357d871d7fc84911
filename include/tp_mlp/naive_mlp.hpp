// naive_mlp: the split the tutorial promises to compare with and never builds, made of the same
// parts, wired the wrong way on purpose. The first layer is row-parallel too (split over H, each
// rank reading its slice of the replicated X), so each rank's X·W1 is only a partial sum of the
// pre-activation, and the activation is not linear: the whole [tokens, p·F] pre-activation must
// leave the region (all-reduced) before it, and Y after W2. Two all-reduces, and 1 + p·F/H times
// Megatron's bytes (5x for GeLU at F = 4H; for SwiGLU both the gate's and the up projection's).
// Forward only. T is the element type of the weights and GEMM inputs, as in parallel_mlp.hpp.
#pragma once

#include "tp_mlp/mlp.hpp"
#include "tp_mlp/region.hpp"
#include "tp_mlp/row_parallel_linear.hpp"

namespace tp_mlp {

template <typename T>
class NaiveMlp final : public MlpScheme {
 public:
  NaiveMlp(Workspace& ws, const Config& cfg, TpComm& tp);

  Scheme scheme() const override { return Scheme::naive; }
  Block tokens_here() const override { return {0, tokens_}; }
  long weight_bytes() const override;
  ConstMatrixRef forward(const ConstMatrixRef& x) override;

 private:
  const Activation activation_;
  const long tokens_;
  const Block hidden_;   // rows of the first layer: this rank's share of H
  const Block columns_;  // rows of W2, and the columns of the pre-activation it activates
  const int projections_;
  Tensor<T> x_in_;  // [tokens, H/T], this rank's slice of X as T (bf16 only)
  // [H/T, p·F]: the first layer's columns are every rank's [W1 | W3] blocks in rank order, as
  // Megatron-LM lays out its fused weight, so that a rank's share of the summed pre-activation
  // is one contiguous [gate_r | up_r] block.
  RowParallelLinear<T> first_;
  RegionExit pre_exit_;          // the pre-activation's partial sums, all-reduced
  Tensor<float> b_in_;           // [1, p·F/T], this rank's columns of b1 (and b3)
  Tensor<float> act_;            // [tokens, F/T]
  Tensor<T> act_in_;             // [tokens, F/T], as T (bf16 only)
  RowParallelLinear<T> second_;  // [F/T, H]
  RegionExit y_exit_;            // Y's partial sums, all-reduced
};

}  // namespace tp_mlp
