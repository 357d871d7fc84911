// parallel_mlp: megatron, megatron-sp, megatron-overlap and serial, which are one composition
// of the parts (serial is the same with a group of one, holding every column):
//
//   x ─ enter (f, f̄) ─ column-parallel [W1 | W3] ─ activation ─ row-parallel W2 ─ leave (g, ḡ) ─ y
//
// Each rank holds columns [first, first + width) of F, for every projection of the first layer,
// side by side: W1's for GeLU; for SwiGLU [W1's | W3's], the gate's and the up projection's
// *matching* columns, fused as Megatron-LM stores them, so that one GEMM gives a rank both
// halves of its own gated product. (Splitting the fused [W1 | W3] itself by columns would hand
// one rank all of the gate and another all of the up projection: wrong.) The backward runs the
// same parts in reverse: dY enters through g's (ḡ's) backward, dX leaves through f's (f̄'s).
//
// megatron-overlap hides g and f behind computation, as Megatron-LM's asynchronous dX
// all-reduce and TransformerEngine's chunked GEMM pipelines do: the forward runs the tokens in
// chunks, each chunk's all-reduce in flight while the next chunk's GEMMs run, and the backward
// starts dX's all-reduce before the dW1 GEMM and finishes it after. Open MPI moves data only
// inside MPI calls, so the GEMMs run in blocks with a progress test between them (a progress
// thread was measured slower on 2 cores: it competes with the GEMMs).
//
// T is the element type of the weights and of every GEMM input (float, or bfloat16 for
// --dtype bf16); GEMMs accumulate, and the activation and the weight gradients are computed,
// in float either way.
#pragma once

#include <optional>

#include "tp_mlp/chunking.hpp"
#include "tp_mlp/column_parallel_linear.hpp"
#include "tp_mlp/mlp.hpp"
#include "tp_mlp/region.hpp"
#include "tp_mlp/row_parallel_linear.hpp"

namespace tp_mlp {

template <typename T>
class ParallelMlp final : public MlpScheme {
 public:
  ParallelMlp(Workspace& ws, Scheme scheme, const Config& cfg, TpComm& tp, int chunks);

  Scheme scheme() const override { return scheme_; }
  Block tokens_here() const override { return tokens_; }
  long weight_bytes() const override;
  bool has_backward() const override { return backward_; }
  Parameters parameters() override;
  ParametersB parameters_bf16() override;
  void parameters_changed() override;
  Gradients gradients() override;

  ConstMatrixRef forward(const ConstMatrixRef& x) override;
  ConstMatrixRef backward(const ConstMatrixRef& dy) override;

 private:
  bool overlapped() const { return chunking_.chunks > 1; }

  const Scheme scheme_;
  TpComm& tp_;
  const Activation activation_;
  const bool backward_;
  const Block columns_;            // this rank's shard of F
  const Block tokens_;             // the token rows x and y hold here
  const Chunking chunking_;        // the forward's token chunks, and GEMM blocks in each
  RegionEntry<T> x_entry_;         // f, f̄
  ColumnParallelLinear<T> first_;  // [H, p·F/T]: W1's columns (and W3's)
  Tensor<float> act_;              // [tokens, F/T], the activation
  Tensor<T> act_in_;               // [tokens, F/T], as T (bf16 only)
  RowParallelLinear<T> second_;    // [F/T, H]: W2's rows
  RegionExit y_exit_;              // g, ḡ
  RegionEntry<T> dy_entry_;        // g's and ḡ's backward
  Tensor<float> dpre_;             // [tokens, p·F/T], the activation's input's gradient
  Tensor<T> dpre_in_;              // [tokens, p·F/T], as T (bf16 only)
  RegionExit dx_exit_;             // f's and f̄'s backward
  std::optional<ConstRef<T>> x_;   // the forward's whole input, kept for dW_in
};

}  // namespace tp_mlp
