// validate: whether the flags fit together and fit the launch, the same verdict on every rank.
#include "tp_mlp/validate.hpp"

#include <algorithm>
#include <climits>
#include <sstream>

#include "tp_mlp/invariant_blocking.hpp"

namespace tp_mlp {
namespace {

// Empty when --plant-fault can be planted in this configuration.
std::string fault_problem(const Config& cfg) {
  const std::vector<Scheme> schemes = cfg.schemes();
  const std::string flag = std::string("--plant-fault ") + fault_name(cfg.fault);
  if (std::find(schemes.begin(), schemes.end(), Scheme::megatron) == schemes.end())
    return flag + " is planted in the megatron scheme: use --scheme megatron or all";
  if (cfg.fault == Fault::one_ulp)
    return cfg.invariant ? ""
                         : flag + " is planted in megatron-inv's partial sums: add --invariant";
  // Every other fault is a mistake in how shards combine: at T = 1 W2/T is W2, b2 added on every
  // rank is added once, and there is no other shard to miss or to duplicate.
  if (cfg.tp_size < 2 && cfg.fault != Fault::none)
    return flag +
           " needs --tp-size 2 or more: it is about shards, and at T = 1 it would plant "
           "nothing";
  if (cfg.fault == Fault::bias_on_every_rank && !cfg.bias) return flag + " needs --bias";
  if (cfg.fault == Fault::gate_up_split && cfg.activation != Activation::swiglu)
    return flag + " needs --activation swiglu";
  return "";
}

}  // namespace

std::string validate(const Config& cfg, int world) {
  const int T = cfg.tp_size;
  const std::vector<Scheme> schemes = cfg.schemes();
  const bool runs_naive = std::find(schemes.begin(), schemes.end(), Scheme::naive) != schemes.end();
  const long F = cfg.intermediate_size(), widest = cfg.tokens() * cfg.projections() * F;
  // Shards may differ by one column or token (partition.hpp); what is refused is a rank that
  // would hold nothing, and groups of unequal size.
  std::ostringstream why;
  if (T > world) {
    why << "--tp-size " << T << " needs at least " << T << " MPI ranks, but this job has " << world
        << ": launch it as mpirun -np " << T << " ./tp_mlp --tp-size " << T;
  } else if (world % T != 0) {
    why << "--tp-size " << T << " must divide the number of MPI ranks (" << world
        << "): launch a multiple of " << T << " ranks, or pick a --tp-size that divides " << world;
  } else if (F < T) {
    why << "--tp-size " << T << " is more than the FFN width F = " << F
        << ", which W1's columns and W2's rows are split along: a rank would hold no columns";
  } else if (cfg.hidden_size < T && runs_naive) {
    why << "the naive scheme splits --hidden-size " << cfg.hidden_size << " over --tp-size " << T
        << " ranks: a rank would hold no rows of W1"
        << (cfg.scheme_choice == SchemeChoice::all
                ? ": choose another size, or --scheme megatron to skip it"
                : "");
  } else if (cfg.sequence_parallel && cfg.scheme_choice != SchemeChoice::all &&
             cfg.scheme_choice != SchemeChoice::megatron) {
    why << "--sequence-parallel is a variant of the megatron scheme: use it with --scheme "
           "megatron or all, not "
        << choice_name(cfg.scheme_choice);
  } else if (cfg.sequence_parallel && cfg.tokens() < T) {
    why << "--sequence-parallel splits the " << cfg.tokens()
        << " tokens (--batch-size x --seq-len) over --tp-size " << T
        << " ranks: a rank would hold no tokens";
  } else if (cfg.overlap && cfg.scheme_choice != SchemeChoice::all &&
             cfg.scheme_choice != SchemeChoice::megatron) {
    why << "--overlap is a variant of the megatron scheme: use it with --scheme megatron or all, "
           "not "
        << choice_name(cfg.scheme_choice);
  } else if (cfg.overlap_chunks > 0 && !cfg.overlap) {
    why << "--overlap-chunks " << cfg.overlap_chunks
        << " sets the chunks of megatron-overlap, which runs only with --overlap";
  } else if (cfg.overlap_chunks > cfg.tokens()) {
    why << "--overlap-chunks " << cfg.overlap_chunks << " splits the " << cfg.tokens()
        << " tokens (--batch-size x --seq-len): a chunk would hold no tokens";
  } else if (cfg.backward && cfg.scheme_choice == SchemeChoice::naive) {
    why << "--backward is implemented for megatron, megatron-sp and serial, not for --scheme naive";
  } else if (cfg.invariant && cfg.scheme_choice == SchemeChoice::naive) {
    why << "--invariant applies to megatron, megatron-sp, megatron-overlap and serial; naive "
           "stays the wrong way: use --scheme megatron, serial or all";
  } else if (cfg.invariant && cfg.reduce_dtype == DType::bf16) {
    why << "--invariant sums the partial sums exactly, as 64-bit integers: --reduce-dtype bf16, "
           "which rounds them at every addition, does not combine with it (the plain schemes "
           "of an --invariant run reduce in the --dtype)";
  } else if (cfg.invariant && InvariantBlocking::of(cfg).blocks < T &&
             cfg.scheme_choice != SchemeChoice::serial) {
    const InvariantBlocking b = InvariantBlocking::of(cfg);
    why << "--invariant cuts the FFN width F = " << F << " into " << b.blocks << " block"
        << (b.blocks == 1 ? "" : "s") << " of " << b.block_width
        << " columns, and each rank holds whole blocks: --tp-size " << T
        << " would leave a rank without one";
  } else if (cfg.dtype == DType::fp32 && cfg.reduction() == DType::bf16) {
    why << "--reduce-dtype bf16 rounds the partial sums of an --dtype fp32 model to bf16, which "
           "only loses digits: use it with --dtype bf16";
  } else if (!fault_problem(cfg).empty()) {
    why << fault_problem(cfg);
  } else if (widest > INT_MAX) {
    why << "--batch-size x --seq-len x " << (cfg.projections() > 1 ? "2 x " : "")
        << "the FFN width = " << widest
        << " elements exceeds the largest tensor MPI can send in one call (" << INT_MAX << ")";
  }
  return why.str();
}

}  // namespace tp_mlp
