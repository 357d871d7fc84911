// column_parallel_linear: a linear layer whose weight is split by columns, Megatron-LM's
// ColumnParallelLinear. Each rank holds whole columns of W [in, out], so from the whole input
// it computes whole columns of the output, out = x·W_shard + b_shard, with no communication:
// whatever follows column by column (the MLP's activation, attention's heads) stays local.
//
// One GEMM may serve several projections of the same input, fused side by side (SwiGLU's gate
// and up projections, attention's Q, K and V), each with its own width on this rank, which need
// not be equal across ranks or projections: the layer holds their columns as one matrix and
// says where each projection's columns are.
//
// Backward, given the output's gradient: the input's gradient is only this rank's partial sum,
// d_in = d_out·W_shardᵀ (to be summed over the group as it leaves the region), and the weights'
// and bias's gradients are whole for this rank's columns, dW = xᵀ·d_out, db = Σ_rows d_out.
//
// T is the element type of the weights and GEMM inputs (float or bfloat16); outputs, biases and
// gradients are float. Buffers and plans come from the workspace.
#pragma once

#include <array>
#include <initializer_list>
#include <optional>

#include "tp_mlp/bf16.hpp"
#include "tp_mlp/comm.hpp"
#include "tp_mlp/linear_options.hpp"
#include "tp_mlp/planned_gemm.hpp"
#include "tp_mlp/workspace.hpp"

namespace tp_mlp {

// This rank's columns of each projection the layer fuses, in order.
struct Projections {
  static constexpr int kMax = 3;  // attention's Q, K and V
  std::array<long, kMax> widths{};
  int count = 0;
  Projections(std::initializer_list<long> each);
  static Projections same(long width, int count);  // SwiGLU's gate and up: `count` alike
  long total() const;
};

template <typename T>
class ColumnParallelLinear {
 public:
  // Input [rows, in_features]; `widths`: this rank's columns of each fused projection.
  ColumnParallelLinear(Workspace& ws, TpComm& tp, long in_features, const Projections& widths,
                       const LinearOptions& options);

  // The parameters, to fill (or change), then prepare(): [in, out here] and [1, out here].
  Tensor<T>& weight() { return weight_; }
  const Tensor<T>& weight() const { return weight_; }
  Tensor<float>& bias() { return bias_; }
  bool has_bias() const { return bias_.size() > 0; }
  void prepare();
  // Where projection `i`'s columns are among the layer's.
  Block projection(int i) const { return projections_[std::size_t(i)]; }

  // output [rows, out here]'s rows `rows` = x's rows · W + b.
  void forward(const ConstRef<T>& x, Block rows);
  Tensor<float>& output() { return output_; }

  // The input's gradient, this rank's partial sum [rows, in], from the output's (as T)...
  MatrixRef backward_input(const ConstRef<T>& d_out);
  // ...or its rows `rows` alone, into the caller's `into` [rows.count, in].
  void backward_input(const ConstRef<T>& d_out, Block rows, MatrixRef into);
  // dW = xᵀ·d_out (d_out as T), db = the column sums of d_out (as float).
  void backward_weights(const ConstRef<T>& x, const ConstRef<T>& d_out_t,
                        const ConstMatrixRef& d_out);
  const Tensor<float>& weight_grad() const { return weight_grad_; }
  const Tensor<float>& bias_grad() const { return bias_grad_; }
  // To change in place: gradients of columns other ranks hold too are summed with theirs
  // (attention's replicated KV heads).
  Tensor<float>& weight_grad() { return weight_grad_; }
  Tensor<float>& bias_grad() { return bias_grad_; }

 private:
  TpComm& tp_;
  const LinearOptions options_;
  std::array<Block, Projections::kMax> projections_{};
  Tensor<T> weight_;           // [in, out here]
  Tensor<float> bias_;         // [1, out here], empty without bias
  Tensor<float> output_;       // [rows, out here]
  Tensor<float> input_grad_;   // [rows, in], a partial sum
  Tensor<float> weight_grad_;  // [in, out here]
  Tensor<float> bias_grad_;    // [1, out here]
  // A product per height of the blocks of rows (at most three: chunking.hpp).
  struct Planned {
    long rows = 0;
    std::optional<PlannedGemm<T>> gemm;
  };
  using ByHeight = std::array<Planned, 3>;
  static PlannedGemm<T>& plan_for(ByHeight& plans, long rows);
  ByHeight forward_{}, input_grad_by_rows_{};
  std::optional<PlannedGemm<T>> input_grad_gemm_;  // all rows at once, into input_grad_
  static constexpr int kMaxGradBlocks = 8;
  std::array<std::optional<PlannedGemm<T>>, kMaxGradBlocks> weight_grad_gemms_{};
  int grad_blocks_ = 0;
};

}  // namespace tp_mlp
