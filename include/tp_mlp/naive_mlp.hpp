// naive_mlp: the split the tutorial promises to compare with and never builds. The first layer
// and W2 are split by rows, so each rank's X·W1 is only a partial sum of the pre-activation,
// and the activation is not linear: the whole [tokens, p·F] pre-activation must be all-reduced
// before it, and Y after W2. Two all-reduces, and 1 + p·F/H times Megatron's bytes (5x for
// GeLU at F = 4H; for SwiGLU both the gate's and the up projection's). Forward only. T is the
// element type of the weights and GEMM inputs, as in column_row_mlp.hpp.
#pragma once

#include <optional>

#include "tp_mlp/gemm.hpp"
#include "tp_mlp/mlp.hpp"
#include "tp_mlp/partition.hpp"

namespace tp_mlp {

template <typename T>
class NaiveMlp final : public MlpScheme {
 public:
  using MatrixT = RowMajor<T>;

  NaiveMlp(const Config& cfg, TpComm& tp);
  // What the constructor allocates for the rows `hidden` of H and `columns` of F.
  static SchemeBytes bytes(const Config& cfg, Block hidden, Block columns);

  Scheme scheme() const override { return Scheme::naive; }
  Block tokens_here() const override { return {0, tokens_}; }
  long weight_bytes() const override;
  const Matrix& forward(const Matrix& x) override;

 private:
  // Sums the partial sums in `partial` over the group, in the reduce dtype.
  void all_reduce(Matrix& partial, MatrixB& partial_b);

  TpComm& tp_;
  const Activation activation_;
  const bool bias_, reduce_bf16_;
  const long tokens_;
  const Block hidden_;   // rows of the first layer: this rank's share of H
  const Block columns_;  // rows of W2, and the columns of the pre-activation it activates
  const int projections_;
  // The first layer's columns are every rank's [W1 | W3] blocks in rank order, as Megatron-LM
  // lays out its fused weight, so that a rank's share of the summed pre-activation is one
  // contiguous [gate_r | up_r] block.
  MatrixT w_in_rows_, w2_rows_, x_in_, act_in_;
  Matrix b_in_, b2_, pre_full_, act_, y_;
  MatrixB pre_b_, y_b_;  // the partial sums in bf16, with --reduce-dtype bf16
  std::optional<PlannedGemm<T>> first_, second_;
};

}  // namespace tp_mlp
