// analysis: the formulas (see analysis.hpp).
#include "tp_mlp/analysis.hpp"

#include <algorithm>

#include "tp_mlp/head_sharding.hpp"
#include "tp_mlp/invariant_blocking.hpp"
#include "tp_mlp/partition.hpp"

namespace tp_mlp {
namespace {

constexpr long kExactBytes = 8;   // an --invariant partial sum: a 64-bit integer
constexpr long kRowMaxBytes = 4;  // a row's largest input, a float, for its grid

// An invariant scheme's collectives: each sum over F leaves as 64-bit integers on a grid that
// a MAX all-reduce of a float per row has made common (exact_sum.hpp), once per pass, before
// the chunks' sums leave.
std::vector<CollectiveCall> invariant_formula(Scheme plain, const Config& cfg, Direction direction,
                                              int overlap_chunks) {
  const long H = cfg.hidden_size, tokens = cfg.tokens(), y = tokens * H;
  const long element = dtype_bytes(cfg.dtype);
  if (plain == Scheme::serial) return {};
  if (plain == Scheme::megatron_sp)  // f̄ (ḡ's backward), the grid, then ḡ (f̄'s backward)
    return {{Collective::all_gather, y, H, element},
            {Collective::all_reduce, tokens, 1, kRowMaxBytes},
            {Collective::reduce_scatter, y, H, kExactBytes}};
  const int chunks = plain == Scheme::megatron_overlap && direction == Direction::forward
                         ? std::max(1, overlap_chunks)
                         : 1;
  std::vector<CollectiveCall> calls = {{Collective::all_reduce, tokens, 1, kRowMaxBytes}};
  for (int c = 0; c < chunks; ++c)
    calls.push_back(
        {Collective::all_reduce, block_of(tokens, chunks, c).count * H, 1, kExactBytes});
  return calls;
}

// The attention block's invariant schemes (invariant_attention.hpp): Y and dX leave as the
// MLP's do; backward, the KV heads' dK and dV are summed exactly first, behind a grid of their
// own: all of them, [tokens, 2·K·d], when some KV head is replicated, none otherwise. The
// layer's: its attention's, then its MLP's.
std::vector<CollectiveCall> invariant_head_split_formula(Scheme plain, const Config& cfg,
                                                         Direction direction, int overlap_chunks) {
  if (plain == Scheme::serial) return {};
  const long H = cfg.hidden_size, tokens = cfg.tokens(), y = tokens * H;
  const bool sp = plain == Scheme::megatron_sp;
  std::vector<CollectiveCall> calls;
  if (sp) calls.push_back({Collective::all_gather, y, H, dtype_bytes(cfg.dtype)});  // f̄ (ḡ's bw)
  if (direction == Direction::backward) {
    calls.push_back({Collective::all_reduce, tokens, 1, kRowMaxBytes});
    if (HeadSharding(cfg.heads(), cfg.kv_heads(), cfg.tp_size).replicated_count() > 0)
      calls.push_back(
          {Collective::all_reduce, tokens * 2 * cfg.kv_heads() * cfg.head_size(), 1, kExactBytes});
  }
  calls.push_back({Collective::all_reduce, tokens, 1, kRowMaxBytes});
  calls.push_back(sp ? CollectiveCall{Collective::reduce_scatter, y, H, kExactBytes}
                     : CollectiveCall{Collective::all_reduce, y, 1, kExactBytes});
  if (cfg.block == BlockKind::layer)
    for (const CollectiveCall& call : invariant_formula(plain, cfg, direction, overlap_chunks))
      calls.push_back(call);
  return calls;
}

// Multiply-adds, 2 FLOPs each, of a rank holding nq query and nkv KV heads: the fused QKV
// projection, the causal products (QKᵀ and P·V over the s(s+1)/2 pairs a sequence's tokens see)
// and Wo's rows forward; backward, each projection's two products (dX and dW), and attention's
// five (QKᵀ again, dP, dQ, dK, dV).
double attention_flops(const Config& cfg, long nq, long nkv, Direction direction) {
  const double t = double(cfg.tokens()), H = cfg.hidden_size, d = double(cfg.head_size());
  const double s = cfg.seq_len, pairs = double(cfg.batch_size) * s * (s + 1) / 2;
  const double linear = t * H * d * double(nq + 2 * nkv) + t * double(nq) * d * H;
  const double causal = pairs * d * double(nq);
  if (direction == Direction::forward) return 2 * (linear + 2 * causal);
  return 2 * (2 * linear + 5 * causal);
}

// Of a rank holding w columns of F: X·W_in (H x p·w) and act·W2 (w x H) forward, twice that
// backward (dW2, dact, dW_in, dX).
double mlp_flops(const Config& cfg, long w, Direction direction) {
  const double per_pass = direction == Direction::forward ? 1 : 2;
  return 2 * per_pass * double(cfg.tokens()) * cfg.hidden_size * double(w) *
         double(cfg.projections() + 1);
}

// The attention block's collectives (its replicated KV heads' gradients backward), and the
// layer's (both blocks'): each block enters and leaves once each way, through f and g (one
// all-reduce of [tokens, H]), or under sequence parallelism f̄ and ḡ (an all-gather and a
// reduce-scatter of it), where the layer's norms' gradients are summed backward too.
std::vector<CollectiveCall> head_split_formula(Scheme scheme, const Config& cfg,
                                               Direction direction, int overlap_chunks) {
  if (scheme == Scheme::serial) return {};
  const long H = cfg.hidden_size, y = cfg.tokens() * H;
  // As the MLP's: activations in the model's element type, partial sums in the reduce dtype;
  // the gradients summed beside them (KV replicas', norms') in fp32, as they are kept.
  const long element = dtype_bytes(cfg.dtype), partial = dtype_bytes(cfg.reduction());
  const bool layer = cfg.block == BlockKind::layer, sp = scheme == Scheme::megatron_sp;
  // megatron-overlap's MLP leaves forward in its token chunks (attention's stays whole).
  const int mlp_chunks = scheme == Scheme::megatron_overlap && direction == Direction::forward
                             ? std::max(1, overlap_chunks)
                             : 1;
  std::vector<CollectiveCall> calls;
  for (int block = 0; block < (layer ? 2 : 1); ++block) {
    if (sp) {
      calls.push_back({Collective::all_gather, y, H, element});
      calls.push_back({Collective::reduce_scatter, y, H, partial});
      continue;
    }
    const int chunks = block == 1 ? mlp_chunks : 1;
    for (int c = 0; c < chunks; ++c)
      calls.push_back(
          {Collective::all_reduce, block_of(cfg.tokens(), chunks, c).count * H, 1, partial});
  }
  if (direction == Direction::forward) return calls;
  const long replicas = replica_grad_elements(cfg);
  if (replicas > 0) calls.push_back({Collective::all_reduce, replicas});
  if (layer && sp) calls.push_back({Collective::all_reduce, cfg.norm_tensors() * H});
  return calls;
}

}  // namespace

long replica_grad_elements(const Config& cfg) {
  const HeadSharding sharding(cfg.heads(), cfg.kv_heads(), cfg.tp_size);
  const long R = sharding.replicated_count();
  return (long(cfg.hidden_size) + (cfg.bias ? 1 : 0)) * 2 * R * cfg.head_size();
}

const char* direction_name(Direction direction) {
  return direction == Direction::forward ? "forward" : "backward";
}

std::vector<CollectiveCall> comm_formula(Scheme scheme, const Config& cfg, Direction direction,
                                         int overlap_chunks) {
  const long H = cfg.hidden_size, y = cfg.tokens() * H;  // [tokens, H]: X, Y, dY, dX
  const long pre = cfg.tokens() * cfg.projections() * cfg.intermediate_size();  // [tokens, p·F]
  // Activations travel in the model's element type, partial sums in the reduce dtype.
  const long element = dtype_bytes(cfg.dtype), partial = dtype_bytes(cfg.reduction());
  if (cfg.block != BlockKind::mlp && is_invariant(scheme))
    return invariant_head_split_formula(plain_of(scheme), cfg, direction, overlap_chunks);
  if (cfg.block != BlockKind::mlp)
    return head_split_formula(scheme, cfg, direction, overlap_chunks);
  if (is_invariant(scheme))
    return invariant_formula(plain_of(scheme), cfg, direction, overlap_chunks);
  switch (scheme) {
    case Scheme::megatron:  // g forward, f backward
      return {{Collective::all_reduce, y, 1, partial}};
    case Scheme::megatron_sp:  // f̄ then ḡ forward: all-gather X, reduce-scatter Y; and back
      return {{Collective::all_gather, y, H, element}, {Collective::reduce_scatter, y, H, partial}};
    case Scheme::megatron_overlap: {  // g of each token chunk forward; f once backward
      if (direction == Direction::backward) return {{Collective::all_reduce, y, 1, partial}};
      const int chunks = std::max(1, overlap_chunks);
      std::vector<CollectiveCall> calls;
      calls.reserve(std::size_t(chunks));
      for (int c = 0; c < chunks; ++c)
        calls.push_back(
            {Collective::all_reduce, block_of(cfg.tokens(), chunks, c).count * H, 1, partial});
      return calls;
    }
    case Scheme::naive:  // forward only: the pre-activation before the activation, then Y
      if (direction == Direction::forward)
        return {{Collective::all_reduce, pre, 1, partial}, {Collective::all_reduce, y, 1, partial}};
      return {};
    default: return {};  // serial
  }
}

double flops_per_rank(Scheme scheme, const Config& cfg, Direction direction) {
  // Multiply-adds of the widest rank's GEMMs, 2 FLOPs each, over the model's tokens (an
  // invariant scheme's padding rows are waste, not work): mlp_flops of its width; the naive
  // scheme's first GEMM is over its rows of H and every column of the first layer instead.
  if (cfg.block != BlockKind::mlp) {  // the rank with the most work (the norms' is not counted)
    const int ranks = plain_of(scheme) == Scheme::serial ? 1 : cfg.tp_size;
    const HeadSharding sharding(cfg.heads(), cfg.kv_heads(), ranks);
    const bool layer = cfg.block == BlockKind::layer;
    double most = 0;
    for (int r = 0; r < ranks; ++r) {
      const HeadShard h = sharding.of(r);
      most = std::max(
          most, attention_flops(cfg, h.query.count, h.kv.count, direction) +
                    (layer ? mlp_flops(cfg, shard_columns(scheme, cfg, ranks, r), direction) : 0));
    }
    return most;
  }
  const double t = double(cfg.tokens()), H = cfg.hidden_size, p = cfg.projections();
  const double F = double(cfg.intermediate_size());
  const int ways = plain_of(scheme) == Scheme::serial ? 1 : cfg.tp_size;
  const double w = double(widest_shard(scheme, cfg, ways));
  if (scheme == Scheme::naive) {
    const double h = double(block_of(cfg.hidden_size, ways, 0).count);
    return 2 * t * (h * p * F + w * H);
  }
  return mlp_flops(cfg, long(w), direction);
}

long shard_columns(Scheme scheme, const Config& cfg, int ways, int rank) {
  const long F = cfg.intermediate_size();
  if (!is_invariant(scheme)) return block_of(F, ways, rank).count;    // partition.hpp
  return InvariantBlocking::of(cfg).columns_of(ways, rank, F).count;  // whole blocks, a tail
}

long widest_shard(Scheme scheme, const Config& cfg, int ways) {
  long widest = 0;
  for (int r = 0; r < ways; ++r) widest = std::max(widest, shard_columns(scheme, cfg, ways, r));
  return widest;
}

ParamFormula param_formula(long hidden_size, long ffn_hidden_size, int projections, int tp_size) {
  const double matrices = projections + 1;  // W1 (and W3), W2
  const double widest = double(block_of(ffn_hidden_size, tp_size, 0).count);
  return {matrices * double(hidden_size) * double(ffn_hidden_size),
          matrices * double(hidden_size) * widest};
}

LayerScale layer_scale(const Config& cfg, int tp_size) {
  const double H = cfg.hidden_size, d = double(cfg.head_size()), t = double(cfg.tokens());
  const double norms = H * double(cfg.norm_tensors());
  const double p = cfg.projections();
  const HeadSharding sharding(cfg.heads(), cfg.kv_heads(), tp_size);
  LayerScale s;
  s.tp_size = tp_size;
  s.kv_heads_held = sharding.kv_heads_held();
  s.replica_params = double(s.kv_heads_held - cfg.kv_heads()) * 2 * H * d;
  for (int r = 0; r < tp_size; ++r) {
    const HeadShard h = sharding.of(r);
    const double nq = double(h.query.count) * d, nkv = double(h.kv.count) * d;
    const double w = double(block_of(cfg.intermediate_size(), tp_size, r).count);
    s.params_per_rank =
        std::max(s.params_per_rank, H * (2 * nq + 2 * nkv) + (p + 1) * H * w + norms);
    s.activations_per_rank =
        std::max(s.activations_per_rank, t * (5 * H + 2 * nq + 2 * nkv + (p + 1) * w));
  }
  return s;
}

double boundary_activation_bytes(Scheme scheme, const Config& cfg) {
  const double tensors = cfg.backward ? 4 : 2;  // X, Y (+ dY, dX)
  const double rows = plain_of(scheme) == Scheme::megatron_sp
                          ? double(block_of(cfg.tokens(), cfg.tp_size, 0).count)
                          : double(cfg.tokens());
  return tensors * rows * cfg.hidden_size * double(dtype_bytes(cfg.dtype));
}

}  // namespace tp_mlp
