// analysis: the reference script's formulas, and the papers' claims, as pure functions of
// the configuration. They are what theory predicts; the communication layer counts what
// actually happened, in the same vocabulary, and the report prints both side by side.
#pragma once

#include <vector>

#include "tp_mlp/collective.hpp"
#include "tp_mlp/config.hpp"

namespace tp_mlp {

enum class Direction { forward, backward };
const char* direction_name(Direction direction);  // "forward", "backward"

// The collectives one pass of a scheme needs at TP degree T, in order (megatron-overlap's
// forward: one per token chunk; the attention block's backward: dX's, then the replicated KV
// heads' gradients').
std::vector<CollectiveCall> comm_formula(Scheme scheme, const Config& cfg, Direction direction,
                                         int overlap_chunks = 1);

// The attention block's replicated KV heads' gradients, summed backward in one all-reduce
// (parallel_attention.hpp): (H + 1 with --bias)·2·R·d elements for R replicated heads at
// --tp-size T; 0 when no head is replicated.
long replica_grad_elements(const Config& cfg);

// Each rank's floating-point operations in one pass (2 per multiply-add of the GEMMs).
double flops_per_rank(Scheme scheme, const Config& cfg, Direction direction);
// The most columns of F any of `ways` ranks holds in `scheme`: whole blocks for an invariant
// scheme (invariant_blocking.hpp), columns differing by one otherwise.
long widest_shard(Scheme scheme, const Config& cfg, int ways);

// The script's SCALING ANALYSIS: the weights' parameters, (p+1)·H·F in all (2HF = 8H² for
// GeLU at F = 4H; 3HF for SwiGLU, whose F is 2/3 of that to keep the count), and per rank
// the widest shard's, (p+1)·H·ceil(F/T).
struct ParamFormula {
  double total = 0;
  double per_rank = 0;
};
ParamFormula param_formula(long hidden_size, long ffn_hidden_size, int projections, int tp_size);

// Activations outside the tensor-parallel region (X, Y and, with --backward, dY and dX):
// replicated on every rank without sequence parallelism, split by tokens with it.
double boundary_activation_bytes(Scheme scheme, const Config& cfg);

}  // namespace tp_mlp
