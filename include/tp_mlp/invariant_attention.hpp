// invariant_attention: megatron-inv, megatron-sp-inv and serial-inv of the attention block
// (--block attention --invariant): the wiring of parallel_attention.hpp, and Y, dX and every
// gradient with the same bits at every TP size, uneven heads and replicated KV heads included.
//
// The unit is the head, as F's block is the MLP's (invariant_mlp.hpp): every head is a dense
// matrix of its own, whichever rank holds it, so that each of its products is a call of one
// shape and one set of strides at every T:
//
//   query head h   Q_h = X·Wq_h [H, d], RoPE, O_h = attention(Q_h, K_kv, V_kv), O_h·Wo_h [d, H]
//   KV head kv     [K_kv | V_kv] = X·[Wk | Wv]_kv [H, 2d], RoPE on K_kv (on every holder alike)
//
// What sums over heads is summed exactly (exact_sum.hpp), each head's part rounded onto a grid
// every rank shares and added as 64-bit integers, so that where a head lives no longer matters:
//   Y  = Σ_h O_h·Wo_h                                  N partial sums, then g (ḡ)
//   dK_kv, dV_kv = Σ_(h of kv) the head's part          the KV heads' gradients (below)
//   dX = Σ_h dQ_h·Wq_hᵀ + Σ_kv [dK | dV]_kv·[Wk | Wv]_kvᵀ   N + K partial sums, then f's backward
// A KV head's gradient is the sum over the query heads it serves, which may sit on several
// ranks: here it is summed where it is made, dK and dV [tokens, 2d] per KV head, exactly, over
// the group (an all-reduce of [tokens, 2·K·d] integers, only when some KV head is replicated);
// then every holder computes dW_kv = Xᵀ·[dK | dV]_kv from the same sum, the same bits, and
// the rank holding the KV head's first query head alone adds its part of dX. dWq_h and dWo_h
// are one head's products, as in the plain scheme.
//
// The price against megatron: Y and dX leave as integers (twice fp32's bytes) behind a MAX
// all-reduce of a float per row for their grids; backward one more grid and, with replicated
// KV heads, dK and dV of every KV head instead of the replicas' weight gradients. No extra
// products: every GEMM of the plain scheme, cut by heads. T is the element type of the weights
// and GEMM inputs, as in parallel_attention.hpp.
#pragma once

#include <optional>

#include "tp_mlp/causal_attention.hpp"
#include "tp_mlp/column_parallel_linear.hpp"
#include "tp_mlp/exact_sum.hpp"
#include "tp_mlp/head_sharding.hpp"
#include "tp_mlp/mlp.hpp"
#include "tp_mlp/region.hpp"
#include "tp_mlp/rope.hpp"
#include "tp_mlp/row_parallel_linear.hpp"

namespace tp_mlp {

template <typename T>
class InvariantAttention final : public MlpScheme {
 public:
  InvariantAttention(Workspace& ws, Scheme scheme, const Config& cfg, TpComm& tp);

  Scheme scheme() const override { return scheme_; }
  Block tokens_here() const override { return tokens_here_; }
  long weight_bytes() const override;
  bool has_backward() const override { return backward_; }
  // In ParallelAttention's layout (this rank's query heads, [dWq | dWk | dWv] side by side).
  Gradients gradients() override;
  void plant_one_ulp() override { planted_ = true; }

  ConstMatrixRef forward(const ConstMatrixRef& x) override;
  ConstMatrixRef backward(const ConstMatrixRef& dy) override;

 private:
  struct QueryHead;  // one query head: its products and buffers; this rank's form a list
  struct KvHead;     // one KV head this rank holds
  // Each row's largest |value| over `of` of every head of `heads`, into row_max_.
  template <typename Head, typename Of>
  void row_maxima(Head* heads, Of of);
  // The KV heads' dK | dV summed over their query heads, wherever those are.
  void sum_kv_gradients();

  const Scheme scheme_;
  TpComm& tp_;
  const bool backward_;
  const long tokens_, head_dim_;
  const Block tokens_here_;  // X's and Y's rows here: all, or this rank's (megatron-sp-inv)
  const HeadSharding sharding_;
  const HeadShard heads_;
  RegionEntry<T> x_entry_, dy_entry_;  // f (f̄); g's (ḡ's) backward
  Rope rope_;
  CausalAttention attention_;  // this rank's query heads, one at a time
  QueryHead* query_ = nullptr;
  KvHead* kv_ = nullptr;
  Tensor<float> partial_;  // [tokens, H]: one head's partial sum of Y or dX
  Tensor<float> row_max_;  // [tokens, 1]: a grid's inputs
  // g (ḡ); the KV heads' [dK | dV] [tokens, 2·K·d], every KV head of the model at its place;
  // f's (f̄'s) backward.
  ExactSum y_sum_, kv_sum_, dx_sum_;
  Tensor<float> bo_, dbo_;  // [1, H], added once after the sum; its gradient
  // The gradients in the layout Gradients promises, gathered from the heads when asked:
  // [H, (nq + 2·nkv)·d], [1, (nq + 2·nkv)·d], [nq·d, H].
  Tensor<float> dw_in_, db_in_, dw_out_;
  double wo_max_ = 0, w_in_max_ = 0;  // the largest |weight| of the whole model, for the grids
  std::optional<ConstRef<T>> x_;      // the forward's whole input, kept for the weights' gradients
  bool planted_ = false;              // one-ulp
};

}  // namespace tp_mlp
