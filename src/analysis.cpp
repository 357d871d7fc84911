// analysis: the formulas (see analysis.hpp).
#include "tp_mlp/analysis.hpp"

namespace tp_mlp {

const char* direction_name(Direction direction) {
  return direction == Direction::forward ? "forward" : "backward";
}

std::vector<CollectiveCall> comm_formula(Scheme scheme, const Config& cfg, Direction direction) {
  const long y = cfg.tokens() * cfg.hidden_size;          // [tokens, H]: X, Y, dY, dX
  const long h = cfg.tokens() * cfg.intermediate_size();  // [tokens, 4H]
  switch (scheme) {
    case Scheme::megatron:  // g forward, f backward
      return {{Collective::all_reduce, y}};
    case Scheme::megatron_sp:  // f̄ then ḡ forward: all-gather X, reduce-scatter Y; and back
      return {{Collective::all_gather, y}, {Collective::reduce_scatter, y}};
    case Scheme::naive:  // forward only: the pre-activation before GeLU, then Y
      if (direction == Direction::forward)
        return {{Collective::all_reduce, h}, {Collective::all_reduce, y}};
      return {};
    case Scheme::serial: return {};
  }
  return {};
}

double flops_per_rank(Scheme scheme, const Config& cfg, Direction direction) {
  // Forward: X·W1 and GeLU(·)·W2, each tokens × H × 4H multiply-adds in all. Backward:
  // twice that (dW2, dG, dW1, dX). Parallel schemes divide all of it by T.
  const int ways = scheme == Scheme::serial ? 1 : cfg.tp_size;
  const int gemms = direction == Direction::forward ? 2 : 4;
  return 2.0 * gemms * double(cfg.tokens()) * cfg.hidden_size * double(cfg.intermediate_size()) /
         ways;
}

ParamFormula param_formula(long hidden_size, int tp_size) {
  const double total = 8.0 * double(hidden_size) * double(hidden_size);
  return {total, total / tp_size};
}

double boundary_activation_bytes(Scheme scheme, const Config& cfg) {
  const double tensors = cfg.backward ? 4 : 2;  // X, Y (+ dY, dX)
  const double rows =
      scheme == Scheme::megatron_sp ? double(cfg.tokens()) / cfg.tp_size : double(cfg.tokens());
  return tensors * rows * cfg.hidden_size * double(sizeof(float));
}

}  // namespace tp_mlp
