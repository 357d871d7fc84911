// faults: the classic mistakes of tensor parallelism, planted on purpose in the megatron
// scheme of a correct model (--plant-fault), to show and to test that verification catches
// each of them:
//   missing-partial-sum  one rank's share of Y never arrives (its W2 rows are zero)
//   duplicate-shard      the last rank holds the first rank's columns again
//   bias-on-every-rank   b2 added before the all-reduce, so T times
//   w2-over-t            the reference script's W2 / T "to correct for the scaling"
//   gate-up-split        SwiGLU's [W1 | W3] split by columns as one matrix: one rank gets the
//                        gate, another the up projection
// with --block attention (parallel_attention.hpp):
//   kv-grad-not-summed   a replicated KV head's Wk, Wv gradients left as each rank's part
//   wrong-kv-head        each rank's KV head slots loaded with the next KV head's columns
// and one that verification must NOT catch, planted in megatron-inv (--invariant):
//   one-ulp              the first F block's partial sums of Y's first rows, each one ulp
//                        larger (one alone may vanish in Y's own rounding): within every
//                        bound, and still a different digest: the bits show what no bound can
#pragma once

#include "tp_mlp/comm.hpp"
#include "tp_mlp/config.hpp"
#include "tp_mlp/mlp.hpp"

namespace tp_mlp {

// Changes this rank's parameters of `mlp` (a column-split scheme) as `fault` says; one-ulp,
// its partial sums (an invariant scheme).
void plant_fault(Fault fault, MlpScheme& mlp, const Config& cfg, const TpComm& tp);

}  // namespace tp_mlp
