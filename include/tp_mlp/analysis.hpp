// analysis: the reference script's formulas, as pure functions of the configuration.
// They are what theory predicts; comm.hpp counts what actually happened, and the report
// prints both side by side.
#pragma once

#include <vector>

#include "tp_mlp/config.hpp"

namespace tp_mlp {

// The all-reduces one forward pass of `scheme` needs at TP degree T.
struct CommFormula {
  std::vector<long> allreduce_elements;  // one entry per all-reduce, in order
  long calls() const { return long(allreduce_elements.size()); }
  long elements() const;
  long bytes() const;
  double ring_bytes_per_rank(int tp_size) const;  // sum of 2·bytes·(T−1)/T
};
CommFormula comm_formula(Scheme scheme, const Config& cfg);

// Each rank's floating-point operations in one forward pass (2 per multiply-add).
double forward_flops_per_rank(Scheme scheme, const Config& cfg);

// The script's SCALING ANALYSIS: W1 and W2 parameters, 8H² in all, 8H²/T per rank.
struct ParamFormula {
  double total = 0;     // 8H²
  double per_rank = 0;  // 8H²/T
};
ParamFormula param_formula(long hidden_size, int tp_size);

}  // namespace tp_mlp
