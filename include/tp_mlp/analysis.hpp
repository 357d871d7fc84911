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

// The collectives one pass of a scheme needs at TP degree T, in order.
std::vector<CollectiveCall> comm_formula(Scheme scheme, const Config& cfg, Direction direction);

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
