// analysis: the formulas (see analysis.hpp).
#include "tp_mlp/analysis.hpp"

namespace tp_mlp {
namespace {

constexpr long kFloat = sizeof(float);

double ring_share(Collective kind, double bytes, int tp_size) {
  const double moved = bytes * (tp_size - 1) / tp_size;  // nothing moves when T = 1
  return kind == Collective::all_reduce ? 2 * moved : moved;
}

}  // namespace

long CommFormula::count(Collective kind) const {
  long n = 0;
  for (const auto& c : calls) n += c.kind == kind;
  return n;
}

long CommFormula::bytes(Collective kind) const {
  long n = 0;
  for (const auto& c : calls)
    if (c.kind == kind) n += c.elements * kFloat;
  return n;
}

long CommFormula::bytes() const {
  return bytes(Collective::all_reduce) + bytes(Collective::all_gather) +
         bytes(Collective::reduce_scatter);
}

double CommFormula::ring_bytes_per_rank(int tp_size) const {
  double total = 0;
  for (const auto& c : calls) total += ring_share(c.kind, double(c.elements * kFloat), tp_size);
  return total;
}

CommFormula comm_formula(Scheme scheme, const Config& cfg, Direction direction) {
  const long y = cfg.tokens() * cfg.hidden_size;          // [tokens, H]: X, Y, dY, dX
  const long h = cfg.tokens() * cfg.intermediate_size();  // [tokens, 4H]
  const bool forward = direction == Direction::forward;
  switch (scheme) {
    case Scheme::megatron:  // g forward, f backward
      return {{{Collective::all_reduce, y}}};
    case Scheme::megatron_sp:  // f̄ then ḡ forward: all-gather X, reduce-scatter Y; and back
      return {{{Collective::all_gather, y}, {Collective::reduce_scatter, y}}};
    case Scheme::naive:
      if (forward) return {{{Collective::all_reduce, h}, {Collective::all_reduce, y}}};
      return {};
    case Scheme::serial:
      return {};
  }
  return {};
}

double ring_bytes_per_rank(const CommStats& counted, int tp_size) {
  return ring_share(Collective::all_reduce, double(counted.all_reduce.bytes), tp_size) +
         ring_share(Collective::all_gather, double(counted.all_gather.bytes), tp_size) +
         ring_share(Collective::reduce_scatter, double(counted.reduce_scatter.bytes), tp_size);
}

double flops_per_rank(Scheme scheme, const Config& cfg, Direction direction) {
  // Forward: X·W1 and GeLU(·)·W2, each tokens × H × 4H multiply-adds in all. Backward:
  // twice that (dW2, dG, dW1, dX). Parallel schemes divide all of it by T.
  const int ways = scheme == Scheme::serial ? 1 : cfg.tp_size;
  const int gemms = direction == Direction::forward ? 2 : 4;
  return 2.0 * gemms * double(cfg.tokens()) * cfg.hidden_size * cfg.intermediate_size() / ways;
}

ParamFormula param_formula(long hidden_size, int tp_size) {
  const double total = 8.0 * double(hidden_size) * double(hidden_size);
  return {total, total / tp_size};
}

double boundary_activation_bytes(Scheme scheme, const Config& cfg) {
  const double tensors = cfg.backward ? 4 : 2;  // X, Y (+ dY, dX)
  const double rows = scheme == Scheme::megatron_sp ? double(cfg.tokens()) / cfg.tp_size
                                                    : double(cfg.tokens());
  return tensors * rows * cfg.hidden_size * kFloat;
}

}  // namespace tp_mlp
