// column_row_mlp: megatron, megatron-sp, megatron-overlap and serial, which share one shape: the
// first layer split by columns, the activation local, W2 split by rows (serial holds every
// column, as a group of one).
//
// Each rank holds columns [first, first + width) of F, for every projection of the first
// layer, side by side: W1's for GeLU; for SwiGLU [W1's | W3's], the gate's and the up
// projection's *matching* columns, fused as Megatron-LM stores them, so that one GEMM gives a
// rank both halves of its own gated product. (Splitting the fused [W1 | W3] itself by columns
// would hand one rank all of the gate and another all of the up projection: wrong.)
//
// Megatron-LM names the communication at the region's edges as conjugate operators
// (megatron/core/tensor_parallel/mappings.py), each a pair forward | backward:
//   f  copy_to_tensor_model_parallel_region        identity       | all-reduce
//   g  reduce_from_tensor_model_parallel_region    all-reduce     | identity
//   f̄  gather_from_sequence_parallel_region         all-gather     | reduce-scatter
//   ḡ  reduce_scatter_to_sequence_parallel_region   reduce-scatter | all-gather
// The forward enters through f (f̄) and leaves through g (ḡ); the backward enters through
// g's (ḡ's) backward and leaves through f's (f̄'s). Entering is the same operation in both
// directions, and so is leaving: enter_region() and leave_region() serve both.
//
// T is the element type of the weights and of every GEMM input (float, or bfloat16 for
// --dtype bf16); GEMMs accumulate, and the activation and the weight gradients are computed,
// in float either way. The partial sums leave the region in the reduce dtype.
//
// megatron-overlap hides g and f behind computation, as Megatron-LM's asynchronous dX
// all-reduce and TransformerEngine's chunked GEMM pipelines do: the forward runs the tokens in
// chunks, each chunk's all-reduce in flight while the next chunk's GEMMs run, and the backward
// starts dX's all-reduce before the dW1 GEMM and finishes it after. Open MPI moves data only
// inside MPI calls, so the GEMMs run in blocks with an MPI_Test between them (a progress
// thread was measured slower on 2 cores: it competes with the GEMMs).
#pragma once

#include <optional>
#include <vector>

#include "tp_mlp/gemm.hpp"
#include "tp_mlp/mlp.hpp"
#include "tp_mlp/partition.hpp"

namespace tp_mlp {

template <typename T>
class ColumnRowMlp final : public MlpScheme {
 public:
  using MatrixT = RowMajor<T>;

  ColumnRowMlp(Scheme scheme, const Config& cfg, TpComm& tp);
  // What the constructor allocates for the shard `columns` of F and the token rows `tokens`.
  static SchemeBytes bytes(Scheme scheme, const Config& cfg, Block columns, Block tokens);

  Scheme scheme() const override { return scheme_; }
  Block tokens_here() const override { return tokens_; }
  long weight_bytes() const override;
  bool has_backward() const override { return dw_in_.size() > 0; }
  Parameters parameters() override;
  ParametersB parameters_bf16() override;
  void parameters_changed() override;
  Gradients gradients() const override;

  const Matrix& forward(const Matrix& x) override;
  const Matrix& backward(const Matrix& dy) override;

 private:
  const MatrixT& enter_region(const Matrix& here, MatrixT& here_t, MatrixT& full);
  // The rows of token chunk `c`'s `j`th GEMM block.
  Block chunk_block(int c, int j) const;
  // The forward's two products, planned once per height of block, each keeping the weights in
  // the layout it prefers; every block of that height runs them.
  struct ForwardPlans {
    long rows;
    PlannedGemm<T> first, second;
  };
  ForwardPlans& plans_for(long rows);
  // Overlapped g/f: the partial sums in `rows` set off to be summed; then all of them, summed.
  void start_leaving(Matrix& partial, Block rows);
  Matrix& finish_leaving(Matrix& partial);
  // The activation and its gradient as the GEMMs read them: as they are, or rounded to T.
  const MatrixT& act_input() const;
  const MatrixT& dpre_input() const;
  Matrix& leave_region(Matrix& partial, Matrix& here);

  const Scheme scheme_;
  TpComm& tp_;
  const Activation activation_;
  const bool sp_, bias_, reduce_bf16_;
  const Block columns_;  // this rank's shard of F
  const Block tokens_;   // the token rows x and y hold here
  const int chunks_;     // token chunks of the forward; more than 1: overlapped
  const int blocks_;     // GEMM blocks per chunk (2 when overlapped: a test between)
  const long hidden_size_;
  const MatrixT* x_ = nullptr;  // the forward's whole input, kept for dW1
  MatrixT w_in_, w2_;
  Matrix b_in_, b2_;
  MatrixT x_here_, x_full_, act_in_, dy_here_, dy_full_, dpre_in_;  // GEMM inputs
  Matrix pre_, act_, y_sum_, y_here_;
  Matrix dact_, dpre_, dw_in_, dw2_, db_in_, db2_, dx_sum_, dx_here_;
  MatrixB partial_b_, here_b_;  // the partial sums in bf16, with --reduce-dtype bf16
  // The products, planned once their operands exist: the forward's per height of its blocks
  // of rows, dW_in's per block of columns.
  std::vector<ForwardPlans> forward_;
  std::vector<PlannedGemm<T>> grad_w_in_;
  std::optional<PlannedGemm<T>> grad_w2_, grad_act_, grad_x_;
};

}  // namespace tp_mlp
