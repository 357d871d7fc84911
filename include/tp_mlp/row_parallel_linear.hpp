// row_parallel_linear: a linear layer whose weight is split by rows, Megatron-LM's
// RowParallelLinear. Each rank holds rows of W [in, out] and the matching columns of the input
// (what a column-parallel layer before it produced, or a slice of a replicated input), so each
// rank computes only a partial sum of the whole output, partial = x_shard·W_shard, which must
// be summed over the group as it leaves the region. The bias is whole, and added once, after
// the sum: added on every rank before it, it would count T times.
//
// Backward, given the whole output's gradient dy (every rank's partial sum fed the same output):
// the weights' gradient is this rank's rows, dW = x_shardᵀ·dy; the input's gradient is this
// rank's columns of it, whole, d_in = dy·W_shardᵀ; the bias's is Σ_rows dy.
//
// T is the element type of the weights and GEMM inputs (float or bfloat16); the partial sums,
// the bias and every gradient are float. Buffers and plans come from the workspace.
#pragma once

#include <array>
#include <optional>

#include "tp_mlp/bf16.hpp"
#include "tp_mlp/linear_options.hpp"
#include "tp_mlp/planned_gemm.hpp"
#include "tp_mlp/workspace.hpp"

namespace tp_mlp {

template <typename T>
class RowParallelLinear {
 public:
  // Input [rows, in here] with row stride `input_stride` (its columns may be a slice of a wider
  // matrix), output [rows, out_features].
  RowParallelLinear(Workspace& ws, long in_here, long input_stride, long out_features,
                    const LinearOptions& options);

  // The parameters, to fill (or change), then prepare(): [in here, out] and the whole [1, out].
  Tensor<T>& weight() { return weight_; }
  const Tensor<T>& weight() const { return weight_; }
  Tensor<float>& bias() { return bias_; }
  bool has_bias() const { return bias_.size() > 0; }
  void prepare();

  // partial [rows, out]'s rows `rows` = x's rows · W: this rank's part of the sum...
  void forward(const ConstRef<T>& x, Block rows);
  // ...or into the caller's `into` [rows.count, out].
  void forward(const ConstRef<T>& x, Block rows, MatrixRef into);
  Tensor<float>& partial() { return partial_; }
  // The bias, once, on the summed output.
  void add_bias(MatrixRef summed) const;

  // From the whole output's gradient dy [rows, out] (as T): dW, db and the input's gradient; db
  // sums dy's rows one after the other, every column in the same order whatever the width.
  void backward(const ConstRef<T>& x, const ConstRef<T>& dy);
  Tensor<float>& input_grad() { return input_grad_; }  // [rows, in here]
  const Tensor<float>& weight_grad() const { return weight_grad_; }
  const Tensor<float>& bias_grad() const { return bias_grad_; }

 private:
  Tensor<T> weight_;           // [in here, out]
  Tensor<float> bias_;         // [1, out], empty without bias
  Tensor<float> partial_;      // [rows, out]
  Tensor<float> input_grad_;   // [rows, in here]
  Tensor<float> weight_grad_;  // [in here, out]
  Tensor<float> bias_grad_;    // [1, out]
  struct ForwardPlan {
    long rows = 0;
    std::optional<PlannedGemm<T>> gemm;
  };
  std::array<ForwardPlan, 3> forward_{};  // one per height of the blocks of rows
  PlannedGemm<T>& plan_for(long rows);
  std::optional<PlannedGemm<T>> weight_grad_gemm_, input_grad_gemm_;
};

}  // namespace tp_mlp
