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
// The columns of F rank `rank` of `ways` holds in `scheme`: whole blocks for an invariant
// scheme (invariant_blocking.hpp), columns differing by one otherwise; and the most any holds.
long shard_columns(Scheme scheme, const Config& cfg, int ways, int rank);
long widest_shard(Scheme scheme, const Config& cfg, int ways);

// The script's SCALING ANALYSIS: the weights' parameters, (p+1)·H·F in all (2HF = 8H² for
// GeLU at F = 4H; 3HF for SwiGLU, whose F is 2/3 of that to keep the count), and per rank
// the widest shard's, (p+1)·H·ceil(F/T).
struct ParamFormula {
  double total = 0;
  double per_rank = 0;
};
ParamFormula param_formula(long hidden_size, long ffn_hidden_size, int projections, int tp_size);

// The layer (--block layer) of cfg's shapes at TP size `tp_size`, on the rank that holds the
// most: attention's query heads' Wq columns and Wo rows and its KV heads' Wk, Wv columns, the
// MLP's columns of W1 (W3) and rows of W2, the norms whole; and the activations its forward
// keeps for the backward: X, Norm1(X), h, Norm2(h) and Y [tokens, H] whole, its heads' Q, K, V
// and O, its columns' pre-activations and activation.
struct LayerScale {
  int tp_size = 1;
  double params_per_rank = 0;
  long kv_heads_held = 0;     // every rank's KV heads, counted once per rank: K + the replicas
  double replica_params = 0;  // what the replicas add over the group: (held − K)·2·H·d
  double activations_per_rank = 0;  // elements
};
LayerScale layer_scale(const Config& cfg, int tp_size);

// Activations outside the tensor-parallel region (X, Y and, with --backward, dY and dX):
// replicated on every rank without sequence parallelism, split by tokens with it.
double boundary_activation_bytes(Scheme scheme, const Config& cfg);

}  // namespace tp_mlp
