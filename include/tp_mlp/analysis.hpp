// analysis: the reference script's formulas, and the papers' claims, as pure functions of
// the configuration. They are what theory predicts; comm.hpp counts what actually happened,
// and the report prints both side by side.
#pragma once

#include <vector>

#include "tp_mlp/comm.hpp"
#include "tp_mlp/config.hpp"

namespace tp_mlp {

enum class Collective { all_reduce, all_gather, reduce_scatter };
enum class Direction { forward, backward };

struct CollectiveCall {
  Collective kind;
  long elements;  // of the whole tensor reduced or assembled, e.g. tokens x H
};

// The collectives one pass of a scheme needs at TP degree T, in order.
struct CommFormula {
  std::vector<CollectiveCall> calls;
  long count(Collective kind) const;
  long bytes(Collective kind) const;
  long count() const { return long(calls.size()); }
  long bytes() const;
  // Bytes each rank sends with ring algorithms: an all-reduce of B bytes is a
  // reduce-scatter then an all-gather, each moving B·(T−1)/T.
  double ring_bytes_per_rank(int tp_size) const;
};
CommFormula comm_formula(Scheme scheme, const Config& cfg, Direction direction);

// Ring bytes per rank of what the communication layer counted, by the same rule.
double ring_bytes_per_rank(const CommStats& counted, int tp_size);

// Each rank's floating-point operations in one pass (2 per multiply-add of the GEMMs).
double flops_per_rank(Scheme scheme, const Config& cfg, Direction direction);

// The script's SCALING ANALYSIS: W1 and W2 parameters, 8H² in all, 8H²/T per rank.
struct ParamFormula {
  double total = 0;     // 8H²
  double per_rank = 0;  // 8H²/T
};
ParamFormula param_formula(long hidden_size, int tp_size);

// Activations outside the tensor-parallel region (X, Y and, with --backward, dY and dX):
// replicated on every rank without sequence parallelism, split by tokens with it.
double boundary_activation_bytes(Scheme scheme, const Config& cfg);

}  // namespace tp_mlp
