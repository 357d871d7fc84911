// region: the edges of the tensor-parallel region, where tensors enter it and partial sums
// leave it. Megatron-LM names them as four conjugate operators
// (megatron/core/tensor_parallel/mappings.py), each a pair forward | backward:
//
//   f  copy_to_tensor_model_parallel_region        identity       | all-reduce
//   g  reduce_from_tensor_model_parallel_region    all-reduce     | identity
//   f̄  gather_from_sequence_parallel_region         all-gather     | reduce-scatter
//   ḡ  reduce_scatter_to_sequence_parallel_region   reduce-scatter | all-gather
//
// A block enters through f (f̄) and leaves through g (ḡ); its backward enters through g's (ḡ's)
// backward and leaves through f's (f̄'s). Entering is the same operation in both directions, and
// so is leaving, so the region has two parts, not four: a RegionEntry per tensor that enters
// (X forward, dY backward) and a RegionExit per tensor that leaves (Y forward, dX backward).
// Outside the region a tensor is replicated on every rank, or, with sequence parallelism, split
// by tokens. Every collective is TpComm's, counted; a group of one moves nothing.
#pragma once

#include "tp_mlp/bf16.hpp"
#include "tp_mlp/comm.hpp"
#include "tp_mlp/config.hpp"
#include "tp_mlp/matrix.hpp"
#include "tp_mlp/partition.hpp"
#include "tp_mlp/workspace.hpp"

namespace tp_mlp {

// How a tensor lives outside the region.
enum class Outside { replicated, sequence_parallel };

// Entering: [rows here, H] floats become the [tokens, H] GEMM input every rank reads, in the
// element type T (float, or bfloat16). f's identity (g's backward) is no copy at all for
// float; f̄ (ḡ's backward) all-gathers the tokens, in T. An --invariant scheme's products run
// on `padded_rows` rows (invariant_blocking.hpp): the rows past the tokens are zeros.
template <typename T>
class RegionEntry {
 public:
  RegionEntry(Workspace& ws, TpComm& tp, Outside outside, long tokens, long hidden_size,
              long padded_rows = 0);
  ConstRef<T> enter(const ConstMatrixRef& here);  // valid until the next call

 private:
  TpComm& tp_;
  const Outside outside_;
  const long tokens_;
  Tensor<T> here_t_;  // [tokens here, H], the input as T, to be gathered (bf16 only)
  Tensor<T> full_;    // [padded rows, H], gathered or copied (sequence parallel, or padded)
};

// Leaving: each rank's fp32 partial sums [tokens, H] are summed over the group: g (f's
// backward) all-reduces them in place, ḡ (f̄'s backward) reduce-scatters them to each rank's
// block of the tokens. They travel, and are added, in the reduce dtype: fp32, or bf16, rounded
// at every addition as a bf16 all-reduce does. An all-reduce may also leave in pieces of rows,
// each started while the rank goes on computing (megatron-overlap), and finished together.
class RegionExit {
 public:
  RegionExit(Workspace& ws, TpComm& tp, Outside outside, DType reduce_dtype, long tokens,
             long hidden_size);
  // partial [tokens, H] -> the sum, this rank's rows of it: partial itself, or a block.
  MatrixRef leave(MatrixRef partial);
  // Overlapped (replicated only): the rows `rows` of `partial` set off to be summed...
  void start_leaving(MatrixRef partial, Block rows);
  // ...and, once every row has been started, all of them summed, in `partial`.
  MatrixRef finish_leaving(MatrixRef partial);

 private:
  template <typename E>
  void sum_over_group(E* partial, E* here, long rows);

  TpComm& tp_;
  const Outside outside_;
  const bool bf16_;
  const long hidden_size_;
  Tensor<float> here_;          // [tokens here, H], the sum's block (sequence parallel)
  Tensor<bfloat16> partial_b_;  // [tokens, H], the partial sums as bf16
  Tensor<bfloat16> here_b_;     // [tokens here, H], their sum's block as bf16
};

// How `scheme`'s tensors live outside the region: split by tokens for megatron-sp (and its
// invariant twin), replicated for the rest.
Outside outside_of(Scheme scheme);

// The rows of the tokens a rank holds outside the region: all of them, or its block.
Block tokens_outside(Outside outside, long tokens, const TpComm& tp);

}  // namespace tp_mlp
