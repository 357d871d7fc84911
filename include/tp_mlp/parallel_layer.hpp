// parallel_layer: a whole pre-norm transformer layer (--block layer), as LLaMA and GPT-2 stack
// them, made of the two blocks:
//
//   h = x + Attention(Norm1(x))      attention split by heads (parallel_attention.hpp)
//   y = h + MLP(Norm2(h))            the MLP split along F (parallel_mlp.hpp)
//
// Each block enters and leaves the tensor-parallel region on its own (f and g each), so the
// layer costs two all-reduces of [tokens, H] forward and two backward, plus the replicated KV
// heads' gradient sum. The norms and the residual additions run outside the region, on the
// whole [tokens, H] that every rank holds after each g: every rank computes them redundantly,
// and their weights' gradients are whole on every rank with no communication.
//
// megatron-sp (Korthikanti et al. 2022, as Megatron-LM runs it): each block enters through f̄
// and leaves through ḡ, so outside the region X, h, Y and the norms live split by tokens: each
// rank normalises and adds only its own tokens, T times less work and memory than the
// replicated norms. Then each rank's norm weight (and bias) gradients sum over its tokens only:
// the true gradients are their sum over the group, one more all-reduce of the norms' [2 or 4,
// H] gradients backward (Megatron-LM's all-reduce of the sequence-parallel parameters' grads).
// Forgetting it passes every forward check and lets the replicas of the norms drift apart
// (--plant-fault norm-grad-not-summed).
//
// megatron-overlap overlaps the MLP's all-reduces as the MLP block does (its forward in token
// chunks, its dX all-reduce behind the dW1 GEMM); attention's stay whole and blocking: its
// all-reduce follows the output projection, and the chunking of attention's heads' GEMMs and
// softmax that would hide it is not built.
//
// Backward, in reverse: dY reaches the MLP and, through the residual, h; the MLP's dX goes back
// through Norm2 and is added to it: dh = dY + Norm2ᵀ(MLPᵀ(dY)); likewise dX = dh +
// Norm1ᵀ(Attentionᵀ(dh)).
//
// T is the blocks' element type (parallel_mlp.hpp): with bf16, attention and the MLP hold
// their weights in bf16, take their inputs rounded to it and give their outputs rounded to it;
// the norms (weights, statistics, outputs) and the residual stream h and Y stay in float, as
// mixed-precision training keeps them.
#pragma once

#include <optional>

#include "tp_mlp/norm.hpp"
#include "tp_mlp/parallel_attention.hpp"
#include "tp_mlp/parallel_mlp.hpp"

namespace tp_mlp {

template <typename T>
class ParallelLayer final : public MlpScheme {
 public:
  // megatron-overlap's MLP runs its forward in `overlap_chunks` token chunks.
  ParallelLayer(Workspace& ws, Scheme scheme, const Config& cfg, TpComm& tp, int overlap_chunks);

  Scheme scheme() const override { return scheme_; }
  Block tokens_here() const override { return tokens_here_; }
  long weight_bytes() const override;  // both blocks' linears and the norms
  bool has_backward() const override { return backward_; }
  // The MLP's: the MLP block's faults are planted in the layer's MLP (faults.hpp).
  Parameters parameters() override { return mlp_.parameters(); }
  ParametersB parameters_bf16() override { return mlp_.parameters_bf16(); }
  void parameters_changed() override { mlp_.parameters_changed(); }
  Gradients gradients() override { return mlp_.gradients(); }
  LayerGradients layer_gradients() override;
  LayerStages layer_stages() override { return stages_; }
  // Attention's faults in the layer's attention; the norms' gradients left unsummed.
  void plant_block_fault(Fault fault) override;

  ConstMatrixRef forward(const ConstMatrixRef& x) override;
  ConstMatrixRef backward(const ConstMatrixRef& dy) override;

 private:
  // Under sequence parallelism, the norms' gradients summed over the group (see above).
  void sum_norm_grads();
  std::optional<ConstMatrixRef>& at(Stage stage) { return stages_[std::size_t(stage)]; }

  const Scheme scheme_;
  TpComm& tp_;
  const bool backward_;
  const Block tokens_here_;          // X's, h's and Y's rows: all, or this rank's (megatron-sp)
  bool sum_norm_grads_;              // megatron-sp; false: --plant-fault norm-grad-not-summed
  Norm norm1_;                       // [tokens here, H], before attention
  ParallelAttention<T> attention_;   // split by heads
  Tensor<float> h_;                  // [tokens here, H] = x + attention
  Norm norm2_;                       // [tokens here, H], before the MLP
  ParallelMlp<T> mlp_;               // split along F
  Tensor<float> y_;                  // [tokens here, H] = h + MLP
  Tensor<float> dh_;                 // [tokens here, H] (backward)
  Tensor<float> dx_;                 // [tokens here, H] (backward)
  Tensor<float> norm_grads_;         // [2 or 4, H]: their sum over the group (megatron-sp)
  std::optional<ConstMatrixRef> x_;  // the forward's input, kept for Norm1's backward
  LayerStages stages_;               // what the last passes gave and got from each block
};

}  // namespace tp_mlp
