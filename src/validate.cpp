// validate: whether the flags fit together and fit the launch, the same verdict on every rank.
#include "tp_mlp/validate.hpp"

#include <algorithm>
#include <climits>
#include <sstream>

#include "tp_mlp/head_sharding.hpp"
#include "tp_mlp/invariant_blocking.hpp"

namespace tp_mlp {
namespace {

// Empty when --plant-fault can be planted in this configuration.
std::string fault_problem(const Config& cfg) {
  const std::string flag = std::string("--plant-fault ") + fault_name(cfg.fault);
  if (is_layer_fault(cfg.fault))
    return flag + " is a mistake of the layer's norms: add --block layer";
  if (!cfg.runs(Scheme::megatron))
    return flag + " is planted in the megatron scheme: use --scheme megatron or all";
  if (is_attention_fault(cfg.fault))
    return flag + " is a mistake of the attention block's: add --block attention";
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

// An fp32 model's partial sums reduced in bf16: refused in every block.
std::string reduce_dtype_problem(const Config& cfg) {
  if (cfg.invariant && cfg.reduce_dtype == DType::bf16)
    return "--invariant sums the partial sums exactly, as 64-bit integers: --reduce-dtype bf16, "
           "which rounds them at every addition, does not combine with it (the plain schemes "
           "of an --invariant run reduce in the --dtype)";
  if (cfg.dtype == DType::fp32 && cfg.reduction() == DType::bf16)
    return "--reduce-dtype bf16 rounds the partial sums of an --dtype fp32 model to bf16, which "
           "only loses digits: use it with --dtype bf16";
  return {};
}

// The rules of megatron's variants, the same for every block: each runs beside megatron, and
// splits the tokens (over the ranks, or into chunks).
std::string variant_problem(const Config& cfg) {
  const bool beside_megatron =
      cfg.scheme_choice == SchemeChoice::all || cfg.scheme_choice == SchemeChoice::megatron;
  std::ostringstream why;
  if (cfg.sequence_parallel && !beside_megatron) {
    why << "--sequence-parallel is a variant of the megatron scheme: use it with --scheme "
           "megatron or all, not "
        << choice_name(cfg.scheme_choice);
  } else if (cfg.sequence_parallel && cfg.tokens() < cfg.tp_size) {
    why << "--sequence-parallel splits the " << cfg.tokens()
        << " tokens (--batch-size x --seq-len) over --tp-size " << cfg.tp_size
        << " ranks: a rank would hold no tokens";
  } else if (cfg.overlap && !beside_megatron) {
    why << "--overlap is a variant of the megatron scheme: use it with --scheme megatron or all, "
           "not "
        << choice_name(cfg.scheme_choice);
  } else if (cfg.overlap_chunks > 0 && !cfg.overlap) {
    why << "--overlap-chunks " << cfg.overlap_chunks
        << " sets the chunks of megatron-overlap, which runs only with --overlap";
  } else if (cfg.overlap_chunks > cfg.tokens()) {
    why << "--overlap-chunks " << cfg.overlap_chunks << " splits the " << cfg.tokens()
        << " tokens (--batch-size x --seq-len): a chunk would hold no tokens";
  }
  return why.str();
}

// The first attention flag given to another block, or null.
const char* attention_flag(const Config& cfg) {
  if (cfg.num_heads > 0) return "--num-heads";
  if (cfg.num_kv_heads > 0) return "--num-kv-heads";
  if (cfg.rope_theta) return "--rope-theta";
  return nullptr;
}

// Empty when the layer's own --plant-fault (norm-grad-not-summed) can be planted.
std::string layer_fault_problem(const Config& cfg) {
  const std::string flag = std::string("--plant-fault ") + fault_name(cfg.fault);
  if (cfg.block != BlockKind::layer)
    return flag + " is a mistake of the layer's norms: add --block layer";
  if (!cfg.sequence_parallel)
    return flag +
           " needs --sequence-parallel: only there do the norms see a part of the tokens, "
           "and their gradients need summing";
  if (!cfg.backward)
    return flag + " needs --backward: the gradients are summed in the backward pass";
  if (cfg.tp_size < 2) return flag + " needs --tp-size 2 or more: a group of one holds every token";
  return "";
}

// Empty when --plant-fault can be planted in the attention block, or the layer, of this
// configuration: the layer takes the MLP block's faults in its MLP too.
std::string attention_fault_problem(const Config& cfg) {
  const std::string flag = std::string("--plant-fault ") + fault_name(cfg.fault);
  if (cfg.fault == Fault::none) return "";
  if (is_layer_fault(cfg.fault)) return layer_fault_problem(cfg);
  if (cfg.block == BlockKind::layer && !is_attention_fault(cfg.fault)) return fault_problem(cfg);
  if (cfg.fault == Fault::one_ulp) return fault_problem(cfg);  // as in the MLP block
  if (!is_attention_fault(cfg.fault))
    return flag +
           " is a mistake of the MLP block's: with --block attention plant kv-grad-not-summed or "
           "wrong-kv-head (or one-ulp with --invariant)";
  if (!cfg.runs(Scheme::megatron))
    return flag + " is planted in the megatron scheme: use --scheme megatron or all";
  if (cfg.fault == Fault::wrong_kv_head && cfg.kv_heads() < 2)
    return flag +
           " needs --num-kv-heads 2 or more: with one KV head, every query head is paired with it";
  if (cfg.fault == Fault::kv_grad_not_summed && !cfg.backward)
    return flag + " needs --backward: the replicas' gradients are summed in the backward pass";
  if (cfg.fault == Fault::kv_grad_not_summed &&
      HeadSharding(cfg.heads(), cfg.kv_heads(), cfg.tp_size).replicated_count() == 0) {
    std::ostringstream why;
    why << flag << " needs a KV head held by several ranks, and " << cfg.heads()
        << " query heads with " << cfg.kv_heads() << " KV heads over --tp-size " << cfg.tp_size
        << " put each KV head's query heads on one rank: fewer KV heads than ranks would "
           "replicate them (--num-kv-heads 1, say)";
    return why.str();
  }
  return "";
}

// An invariant MLP (the block, or the layer's) holds whole blocks of F on every rank.
std::string invariant_blocking_problem(const Config& cfg) {
  if (!cfg.invariant || cfg.scheme_choice == SchemeChoice::serial) return "";
  const InvariantBlocking b = InvariantBlocking::of(cfg);
  if (b.blocks >= cfg.tp_size) return "";
  std::ostringstream why;
  why << "--invariant cuts the FFN width F = " << cfg.intermediate_size() << " into " << b.blocks
      << " block" << (b.blocks == 1 ? "" : "s") << " of " << b.block_width
      << " columns, and each rank holds whole blocks: --tp-size " << cfg.tp_size
      << " would leave a rank without one";
  return why.str();
}

// The attention block's and the layer's own rules: the essential divisibility, and what they do
// not run yet.
std::string attention_problem(const Config& cfg) {
  const long H = cfg.hidden_size, N = cfg.heads(), K = cfg.kv_heads(), F = cfg.intermediate_size();
  const bool layer = cfg.block == BlockKind::layer;
  const std::string heads_flag =
      "--num-heads " + std::to_string(N) + (cfg.num_heads > 0 ? "" : " (the default, H/64)");
  const std::string block = std::string("--block ") + block_name(cfg.block);
  std::ostringstream why;
  if (H % N != 0) {
    why << heads_flag << " must divide --hidden-size " << H
        << ": each head takes d = H/N of its features";
  } else if ((H / N) % 2 != 0) {
    why << "--hidden-size " << H << " / " << heads_flag << " = " << H / N
        << " features per head, which must be even: RoPE turns them in pairs";
  } else if (N % K != 0) {
    why << "--num-kv-heads " << K << " must divide " << heads_flag
        << ": each KV head serves N/K query heads";
  } else if (layer && F < cfg.tp_size) {
    why << "--tp-size " << cfg.tp_size << " is more than the FFN width F = " << F
        << ", which the layer's MLP is split along: a rank would hold no columns";
  } else if (!layer && cfg.norm) {
    why << "--norm chooses the layer's normalisation: add --block layer";
  } else if (cfg.scheme_choice == SchemeChoice::naive) {
    why << block << " has no naive scheme: use --scheme megatron, serial or all";
  } else if (const std::string reduce = reduce_dtype_problem(cfg); !reduce.empty()) {
    why << reduce;
  } else if (cfg.invariant && layer && cfg.sequence_parallel) {
    why << "--invariant with --sequence-parallel is not built for --block layer: there each "
           "rank's norms sum their weights' gradients over its own tokens, which an exact sum "
           "over the group would have to replace; run the two apart";
  } else if (const std::string blocks = invariant_blocking_problem(cfg); layer && !blocks.empty()) {
    why << blocks;
  } else if (!layer && (cfg.overlap || cfg.overlap_chunks > 0)) {
    why << "--overlap hides the MLP's all-reduces, and the attention block has none: with "
           "--block layer it overlaps the layer's MLP";
  } else if (const std::string variant = variant_problem(cfg); !variant.empty()) {
    why << variant;
  } else if (const std::string fault = attention_fault_problem(cfg); !fault.empty()) {
    why << fault;
  } else {
    // The largest collectives: Y (and dX) [tokens, H], and the replicated KV heads' gradients
    // (--invariant: every KV head's dK and dV, [tokens, 2·K·d]).
    const long R = HeadSharding(N, K, cfg.tp_size).replicated_count();
    const long largest = std::max({cfg.tokens() * H, (H + 1) * 2 * R * (H / N),
                                   cfg.invariant ? cfg.tokens() * 2 * K * (H / N) : 0L});
    if (largest > INT_MAX)
      why << "the attention block's largest collective would hold " << largest
          << " elements (Y [--batch-size x --seq-len, --hidden-size], or the replicated KV "
             "heads' gradients), more than MPI can send in one call ("
          << INT_MAX << ")";
  }
  return why.str();
}

}  // namespace

std::string validate(const Config& cfg, int world) {
  const int T = cfg.tp_size;
  const long F = cfg.intermediate_size(), widest = cfg.tokens() * cfg.projections() * F;
  // Shards may differ by one column or token (partition.hpp); what is refused is a rank that
  // would hold nothing, and groups of unequal size.
  std::ostringstream why;
  const bool mlp = cfg.block == BlockKind::mlp;
  if (T > world) {
    why << "--tp-size " << T << " needs at least " << T << " MPI ranks, but this job has " << world
        << ": launch it as mpirun -np " << T << " ./tp_mlp --tp-size " << T;
  } else if (world % T != 0) {
    why << "--tp-size " << T << " must divide the number of MPI ranks (" << world
        << "): launch a multiple of " << T << " ranks, or pick a --tp-size that divides " << world;
  } else if (!mlp) {
    why << attention_problem(cfg);
  } else if (attention_flag(cfg)) {
    why << attention_flag(cfg) << " shapes the attention block: add --block attention (or layer)";
  } else if (cfg.norm) {
    why << "--norm chooses the layer's normalisation: add --block layer";
  } else if (F < T) {
    why << "--tp-size " << T << " is more than the FFN width F = " << F
        << ", which W1's columns and W2's rows are split along: a rank would hold no columns";
  } else if (cfg.hidden_size < T && cfg.runs(Scheme::naive)) {
    why << "the naive scheme splits --hidden-size " << cfg.hidden_size << " over --tp-size " << T
        << " ranks: a rank would hold no rows of W1"
        << (cfg.scheme_choice == SchemeChoice::all
                ? ": choose another size, or --scheme megatron to skip it"
                : "");
  } else if (const std::string variant = variant_problem(cfg); !variant.empty()) {
    why << variant;
  } else if (cfg.backward && cfg.scheme_choice == SchemeChoice::naive) {
    why << "--backward is implemented for megatron, megatron-sp and serial, not for --scheme naive";
  } else if (cfg.invariant && cfg.scheme_choice == SchemeChoice::naive) {
    why << "--invariant applies to megatron, megatron-sp, megatron-overlap and serial; naive "
           "stays the wrong way: use --scheme megatron, serial or all";
  } else if (const std::string blocks = invariant_blocking_problem(cfg); !blocks.empty()) {
    why << blocks;
  } else if (const std::string reduce = reduce_dtype_problem(cfg); !reduce.empty()) {
    why << reduce;
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
