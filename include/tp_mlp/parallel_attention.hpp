// parallel_attention: the attention block split by heads, as Megatron-LM splits it (--block
// attention; the megatron scheme, and serial as the same with a group of one):
//
//   x ─ enter (f) ─ column-parallel [Wq | Wk | Wv] ─ RoPE(Q, K) ─ causal attention ─
//       row-parallel Wo ─ leave (g) ─ y
//
// Each rank holds its query heads and the KV heads they use (head_sharding.hpp): their columns
// of Wq, Wk and Wv fused side by side in one column-parallel GEMM, and the same query heads'
// rows of Wo. Heads are independent, so RoPE and attention are local; only Y's partial sums
// leave the region: one all-reduce forward, one backward for dX, as the MLP's.
//
// A KV head that several ranks need (K < T, or its query heads straddling ranks) is held by
// each: its K and V are computed redundantly, and backward each rank's Wk and Wv gradient
// columns of it (and bk, bv) hold only its own query heads' part. The true gradient is their
// sum over exactly the ranks that hold it. That sum is one more all-reduce over the whole
// group, of a [H (+1 with --bias), 2·R·d] buffer holding every replicated head's dWk and dWv
// columns (the bias row under them) side by side, zeros from the ranks that do not hold a head:
// a zero adds nothing, so the sum over the group is the sum over its holders, and one call
// serves every replicated head whatever ranks hold it. Bytes: (H + bias)·2·R·d·4, R the
// replicated heads (0 when no head is replicated: then no call).
//
// A rank may own no query head (N < T): its linears are empty, its partial sums zeros, and it
// takes part in every collective all the same.
//
// megatron-sp enters through f̄ and leaves through ḡ instead, as Megatron-LM's sequence-parallel
// attention does: X and Y live split by tokens outside, the all-gather gives every rank each
// sequence whole (attention needs it: a token sees the ones before it), and Y's partial sums
// are reduce-scattered back to each rank's tokens: the bytes of the all-reduce, the
// activations outside T times smaller.
//
// T is the element type of the weights and of the GEMMs' inputs, float or bfloat16 (--dtype), as
// in the MLP: the projections' outputs Q, K, V, attention itself and every gradient are float,
// and what enters a bf16 GEMM is rounded to bf16 first (X, O, dY, dQKV); Y and dX leave as bf16
// values, a bf16 model's activations.
#pragma once

#include <optional>

#include "tp_mlp/causal_attention.hpp"
#include "tp_mlp/column_parallel_linear.hpp"
#include "tp_mlp/head_sharding.hpp"
#include "tp_mlp/mlp.hpp"
#include "tp_mlp/region.hpp"
#include "tp_mlp/rope.hpp"
#include "tp_mlp/row_parallel_linear.hpp"

namespace tp_mlp {

template <typename T>
class ParallelAttention final : public MlpScheme {
 public:
  ParallelAttention(Workspace& ws, Scheme scheme, const Config& cfg, TpComm& tp);

  Scheme scheme() const override { return scheme_; }
  Block tokens_here() const override { return tokens_here_; }
  long weight_bytes() const override;
  bool has_backward() const override { return backward_; }
  // columns: this rank's query heads; w_in [H, (nq + 2·nkv)·d] = [Wq | Wk | Wv]'s columns of
  // them, b_in likewise; w_out [nq·d, H] = Wo's rows; b_out [1, H] = bo.
  Parameters parameters() override;
  ParametersB parameters_bf16() override;
  void parameters_changed() override;
  Gradients gradients() override;
  void plant_block_fault(Fault fault) override;

  ConstMatrixRef forward(const ConstMatrixRef& x) override;
  ConstMatrixRef backward(const ConstMatrixRef& dy) override;

 private:
  // The replicated KV heads' gradient columns summed over the group (see above).
  void sum_replicas();
  // The fused projection's columns of the query heads, of the KV heads' keys, of their values.
  template <typename M>
  auto q_of(M& m) const {
    return m.middleCols(qkv_.projection(0).first, qkv_.projection(0).count);
  }
  template <typename M>
  auto k_of(M& m) const {
    return m.middleCols(qkv_.projection(1).first, qkv_.projection(1).count);
  }
  template <typename M>
  auto v_of(M& m) const {
    return m.middleCols(qkv_.projection(2).first, qkv_.projection(2).count);
  }

  const Scheme scheme_;
  const Config& cfg_;
  TpComm& tp_;
  const bool backward_;
  const long tokens_, head_dim_;
  const Block tokens_here_;  // X's and Y's rows here: all, or this rank's (megatron-sp)
  const HeadSharding sharding_;
  const HeadShard heads_;         // this rank's query heads and KV heads
  bool sum_replicas_ = true;      // false: --plant-fault kv-grad-not-summed
  RegionEntry<T> x_entry_;        // f (f̄)
  ColumnParallelLinear<T> qkv_;   // [H, (nq + 2·nkv)·d]: Wq's, Wk's, Wv's columns
  Rope rope_;                     // on Q and K, in place in qkv_'s output
  CausalAttention attention_;     // this rank's heads
  Tensor<float> o_;               // [tokens, nq·d], attention's output
  Tensor<T> o_in_;                // [tokens, nq·d], O as bf16 (bf16 only)
  RowParallelLinear<T> out_;      // [nq·d, H]: Wo's rows
  RegionExit y_exit_;             // g (ḡ)
  RegionEntry<T> dy_entry_;       // g's (ḡ's) backward
  Tensor<float> dqkv_;            // [tokens, (nq + 2·nkv)·d], the projection's gradient
  Tensor<T> dqkv_in_;             // [tokens, (nq + 2·nkv)·d], dQKV as bf16 (bf16 only)
  Tensor<float> replicas_;        // [H (+1), 2·R·d], the replicated heads' dWk | dWv
  RegionExit dx_exit_;            // f's (f̄'s) backward
  std::optional<ConstRef<T>> x_;  // the forward's input, kept for dW_qkv
};

}  // namespace tp_mlp
