// analysis: the formulas (see analysis.hpp).
#include "tp_mlp/analysis.hpp"

#include <numeric>

namespace tp_mlp {

long CommFormula::elements() const {
  return std::accumulate(allreduce_elements.begin(), allreduce_elements.end(), 0L);
}

long CommFormula::bytes() const { return elements() * long(sizeof(float)); }

double CommFormula::ring_bytes_per_rank(int tp_size) const {
  // A ring all-reduce is a reduce-scatter then an all-gather: each sends (T−1)/T of the
  // buffer twice. With T = 1 nothing moves.
  return 2.0 * double(bytes()) * (tp_size - 1) / tp_size;
}

CommFormula comm_formula(Scheme scheme, const Config& cfg) {
  const long y = cfg.tokens() * cfg.hidden_size;               // [tokens, H]
  const long h = cfg.tokens() * cfg.intermediate_size();       // [tokens, 4H]
  switch (scheme) {
    case Scheme::megatron: return {{y}};
    case Scheme::naive: return {{h, y}};
    case Scheme::serial: return {{}};
  }
  return {};
}

double forward_flops_per_rank(Scheme scheme, const Config& cfg) {
  // X·W1 and GeLU(·)·W2 are each tokens × H × 4H multiply-adds in all; every parallel
  // scheme divides both by T, serial does all of them on one rank.
  const int ways = scheme == Scheme::serial ? 1 : cfg.tp_size;
  return 2.0 * 2.0 * double(cfg.tokens()) * cfg.hidden_size * cfg.intermediate_size() / ways;
}

ParamFormula param_formula(long hidden_size, int tp_size) {
  const double total = 8.0 * double(hidden_size) * double(hidden_size);
  return {total, total / tp_size};
}

}  // namespace tp_mlp
