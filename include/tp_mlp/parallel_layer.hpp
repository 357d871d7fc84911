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
// --invariant (megatron-inv, megatron-overlap-inv, serial-inv) builds the same layer of the
// blocks' invariant schemes (invariant_attention.hpp, invariant_mlp.hpp): the norms and the
// residuals are row by row on every token, the same calls at every T, and the norms' weight
// gradients sum the same tokens in the same order; so Y, dX and every gradient keep the same
// bits at every T. Not under sequence parallelism: there each rank's norms sum its own tokens,
// which an exact sum over the group would have to take over (refused, validate.cpp).
//
// The blocks' element type (parallel_mlp.hpp): with bf16, attention and the MLP hold their
// weights in bf16, take their inputs rounded to it and give their outputs rounded to it; the
// norms (weights, statistics, outputs) and the residual stream h and Y stay in float, as
// mixed-precision training keeps them.
#pragma once

#include <optional>

#include "tp_mlp/invariant_attention.hpp"
#include "tp_mlp/invariant_mlp.hpp"
#include "tp_mlp/norm.hpp"
#include "tp_mlp/parallel_attention.hpp"
#include "tp_mlp/parallel_mlp.hpp"

namespace tp_mlp {

// Attention and Mlp: the blocks' schemes, ParallelAttention<T> and ParallelMlp<T> (or their
// invariant twins), built as (ws, scheme, cfg, tp) and (ws, scheme, cfg, tp, chunks).
template <typename Attention, typename Mlp>
class TransformerLayer final : public MlpScheme {
 public:
  // megatron-overlap's MLP runs its forward in `overlap_chunks` token chunks.
  TransformerLayer(Workspace& ws, Scheme scheme, const Config& cfg, TpComm& tp, int overlap_chunks);

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
  void plant_one_ulp() override { mlp_.plant_one_ulp(); }  // in its MLP's partial sums

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
  Attention attention_;              // split by heads
  Tensor<float> h_;                  // [tokens here, H] = x + attention
  Norm norm2_;                       // [tokens here, H], before the MLP
  Mlp mlp_;                          // split along F
  Tensor<float> y_;                  // [tokens here, H] = h + MLP
  Tensor<float> dh_;                 // [tokens here, H] (backward)
  Tensor<float> dx_;                 // [tokens here, H] (backward)
  Tensor<float> norm_grads_;         // [2 or 4, H]: their sum over the group (megatron-sp)
  std::optional<ConstMatrixRef> x_;  // the forward's input, kept for Norm1's backward
  LayerStages stages_;               // what the last passes gave and got from each block
};

template <typename T>
using ParallelLayer = TransformerLayer<ParallelAttention<T>, ParallelMlp<T>>;
template <typename T>
using InvariantLayer = TransformerLayer<InvariantAttention<T>, InvariantMlp<T>>;

}  // namespace tp_mlp
