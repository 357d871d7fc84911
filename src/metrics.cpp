// metrics: every derived number of the report, computed once (see metrics.hpp).
#include "tp_mlp/metrics.hpp"

#include <algorithm>

#include "tp_mlp/partition.hpp"

namespace tp_mlp {
namespace {

constexpr long kExampleHidden = 4096;  // the script's example: H = 4096, T = 8
constexpr int kExampleTp = 8;
constexpr int kLayerScales[] = {1, 2, 4, 8};  // the TP sizes a layer's memory is shown at

const SchemeResult* find(const std::vector<SchemeResult>& results, Scheme scheme) {
  for (const auto& r : results)
    if (r.scheme == scheme) return &r;
  return nullptr;
}

double gflops(double flops, double ms) { return ms > 0 ? flops / (ms * 1e6) : 0.0; }

int ranks_used(Scheme scheme, const Config& cfg) {
  return scheme == Scheme::serial ? 1 : cfg.tp_size;
}

// How fast a step ran against the fastest it could: this rank's FLOPs at the core's FMA
// peak, plus the bare collectives it needs.
StepSpeed speed(double flops, const Summary& time, const Summary& floor, double peak_gflops) {
  StepSpeed s;
  s.gflops_per_rank = gflops(flops, time.median);
  s.percent_of_peak = 100 * s.gflops_per_rank / peak_gflops;
  const double compute_ms = flops / (peak_gflops * 1e6);
  s.bound_ms = compute_ms + floor.median;
  s.over_bound = time.median / s.bound_ms;
  s.overlapped_bound_ms = std::max(compute_ms, floor.median);
  return s;
}

// (megatron's time − this time) / megatron's comm: the share of megatron's communication this
// step no longer pays for. Against megatron's compute, not its own, so that whatever the
// chunking costs in computation counts against what it hides.
std::optional<double> hidden(const StepTiming& t, const StepTiming& megatron) {
  if (megatron.comm.median <= 0) return std::nullopt;
  return (megatron.total.median - t.total.median) / megatron.comm.median;
}

PassTraffic traffic(const SchemeResult& r, Direction direction, int tp_size) {
  const PassResult& p = direction == Direction::forward ? r.forward : r.backward;
  PassTraffic t;
  t.scheme = r.scheme;
  t.direction = direction;
  t.counted = p.counted;
  t.formula = tally(p.formula);
  t.counted_ring = t.counted.ring_bytes_per_rank(tp_size);
  t.formula_ring = t.formula.ring_bytes_per_rank(tp_size);
  t.matches_formula = t.counted.same_traffic(t.formula);
  t.flops_per_rank = p.flops_per_rank;
  return t;
}

ParamRow param_row(long hidden_size, long ffn_hidden_size, int projections, int tp_size,
                   DType dtype) {
  const ParamFormula p = param_formula(hidden_size, ffn_hidden_size, projections, tp_size);
  const double bytes = double(dtype_bytes(dtype));
  return {hidden_size, ffn_hidden_size, tp_size, p, p.total * bytes, p.per_rank * bytes};
}

// The attention block's weights: Wq [H, N·d], Wk and Wv [H, K·d], Wo [N·d, H]; per rank, the
// rank with the most: its query heads' columns and rows, and the KV heads it holds.
ParamRow attention_param_row(const Config& cfg) {
  const double H = cfg.hidden_size, d = double(cfg.head_size());
  const AttentionHeads heads = attention_heads(cfg);
  double most = 0;
  for (const HeadShard& h : heads.ranks)
    most = std::max(most, H * d * double(2 * h.query.count + 2 * h.kv.count));
  const ParamFormula p = {H * d * double(2 * heads.query_heads + 2 * heads.kv_heads), most};
  const double bytes = double(dtype_bytes(cfg.dtype));
  return {cfg.hidden_size, 0, cfg.tp_size, p, p.total * bytes, p.per_rank * bytes};
}

Shares shares_of(const Config& cfg) {
  Shares s;
  s.ffn_columns = share_of(cfg.intermediate_size(), cfg.tp_size);
  if (cfg.runs(Scheme::naive)) s.hidden_rows = share_of(cfg.hidden_size, cfg.tp_size);
  if (cfg.runs(Scheme::megatron_sp)) s.tokens = share_of(cfg.tokens(), cfg.tp_size);
  if (cfg.block != BlockKind::mlp) s.query_heads = share_of(cfg.heads(), cfg.tp_size);
  return s;
}

}  // namespace

Share share_of(long length, int ranks) {
  const Block first = block_of(length, ranks, 0);
  const long extra = length % ranks;
  return {length, ranks, first.count, extra == 0 ? ranks : int(extra)};
}

std::vector<long> Share::per_rank() const {
  std::vector<long> counts(std::size_t(ranks), wide - 1);
  std::fill_n(counts.begin(), wide_ranks, wide);
  return counts;
}

bool Shares::uneven() const {
  return !ffn_columns.even() || (hidden_rows && !hidden_rows->even()) ||
         (tokens && !tokens->even()) || (query_heads && !query_heads->even());
}

AttentionHeads attention_heads(const Config& cfg) {
  const HeadSharding sharding(cfg.heads(), cfg.kv_heads(), cfg.tp_size);
  AttentionHeads a{cfg.heads(),
                   cfg.kv_heads(),
                   cfg.head_size(),
                   cfg.rope_base(),
                   {},
                   sharding.replicated_heads(),
                   sharding.kv_heads_held()};
  for (int r = 0; r < cfg.tp_size; ++r) a.ranks.push_back(sharding.of(r));
  return a;
}

VerificationMetrics verification_metrics(const std::vector<SchemeResult>& results) {
  VerificationMetrics m;
  m.passed = true;
  for (const SchemeResult& r : results) {
    SchemeChecks c{r.scheme, r.output, r.gradients, r.blocks, r.digests, true, r.output.passed};
    for (const auto* checks : {&r.gradients, &r.blocks})
      for (const Verification& g : *checks) c.passed = c.passed && g.passed;
    for (const TensorDigest& d : r.digests) c.copies_match = c.copies_match && d.copies_match;
    // An invariant scheme promises the same bits everywhere: one differing copy is a failure.
    if (is_invariant(r.scheme)) c.passed = c.passed && c.copies_match;
    m.any_gradients = m.any_gradients || !r.gradients.empty();
    m.any_blocks = m.any_blocks || !r.blocks.empty();
    m.any_invariant = m.any_invariant || is_invariant(r.scheme);
    m.passed = m.passed && c.passed;
    m.schemes.push_back(c);
  }
  return m;
}

CommunicationMetrics communication_metrics(const Config& cfg,
                                           const std::vector<SchemeResult>& results) {
  const int T = cfg.tp_size;
  CommunicationMetrics m;
  const SchemeResult& lead = results.front();
  const CommStats& counted = lead.forward.counted;
  m.lead = lead.scheme;
  m.lead_allreduce_calls = counted[Collective::all_reduce].calls;
  m.lead_calls = counted.calls();
  m.bytes_per_call = m.lead_calls ? counted.bytes() / m.lead_calls : 0;
  const long element_bytes =
      lead.forward.formula.empty() ? dtype_bytes(cfg.dtype) : lead.forward.formula[0].element_bytes;
  m.elements_per_call = m.bytes_per_call / element_bytes;
  m.ring_per_rank = tally(lead.forward.formula).ring_bytes_per_rank(T);
  m.ring_total = m.ring_per_rank * T;
  for (const SchemeResult& r : results) {
    m.passes.push_back(traffic(r, Direction::forward, T));
    if (r.has_backward) m.passes.push_back(traffic(r, Direction::backward, T));
  }
  const SchemeResult* megatron = find(results, Scheme::megatron);
  const SchemeResult* naive = find(results, Scheme::naive);
  const SchemeResult* sp = find(results, Scheme::megatron_sp);
  if (megatron && naive && megatron->forward.counted.bytes() > 0)
    m.naive_over_megatron_bytes =
        double(naive->forward.counted.bytes()) / double(megatron->forward.counted.bytes());
  if (megatron && sp)
    m.sequence_parallel =
        CommunicationMetrics::SequenceParallel{sp->forward.counted.ring_bytes_per_rank(T),
                                               megatron->forward.counted.ring_bytes_per_rank(T),
                                               sp->boundary_bytes, megatron->boundary_bytes};
  for (const SchemeResult& r : results) m.any_invariant = m.any_invariant || is_invariant(r.scheme);
  if (cfg.block != BlockKind::mlp && megatron) {
    AttentionTraffic a;
    a.layer = cfg.block == BlockKind::layer;
    const PassTraffic forward = traffic(*megatron, Direction::forward, T);
    const PassTraffic backward = traffic(*megatron, Direction::backward, T);
    a.y_bytes = forward.formula.bytes();  // Y's one all-reduce (dX's backward is its twin)
    a.y_element_bytes = dtype_bytes(cfg.reduction());
    a.replica_bytes = replica_grad_elements(cfg) * long(sizeof(float));
    a.forward = forward.counted;
    a.backward = backward.counted;
    a.has_backward = megatron->has_backward;
    a.matches_formula = forward.matches_formula && (!a.has_backward || backward.matches_formula);
    m.attention = a;
  }
  return m;
}

BenchmarkMetrics benchmark_metrics(const Config& cfg, const std::vector<SchemeResult>& results,
                                   const Launch& launch,
                                   const std::optional<OverlapChoice>& overlap) {
  // % peak and the bound against the peak of the arithmetic that ran.
  const bool bf16 = cfg.dtype == DType::bf16 && launch.bf16_peak_gflops > 0;
  const double peak_gflops = bf16 ? launch.bf16_peak_gflops : launch.peak_gflops;
  BenchmarkMetrics m;
  m.overlap = overlap;
  m.peak_gflops = peak_gflops;
  m.peak_is_bf16 = bf16;
  m.uneven_shards = shares_of(cfg).uneven();
  m.oversubscribed = launch.oversubscribed;
  m.ranks_on_node = launch.ranks_on_node;
  m.cores_on_node = launch.cores_on_node;
  const SchemeResult* serial = find(results, Scheme::serial);
  const SchemeResult* megatron = find(results, Scheme::megatron);
  m.has_serial = serial != nullptr;
  for (const SchemeResult& r : results) {
    SchemeSpeed s;
    s.scheme = r.scheme;
    s.timing = r.timing;
    s.floor = r.floor;
    if (r.forward.counted.calls() > 0 && r.floor.median > 0)
      s.comm_over_floor = r.timing.comm.median / r.floor.median;
    s.forward = speed(r.forward.flops_per_rank, r.timing.total, r.floor, peak_gflops);
    if (r.timing.compute_mean.median > 0)
      s.compute_imbalance = r.timing.compute.median / r.timing.compute_mean.median;
    if (serial) {
      const double speedup =
          r.timing.total.median > 0 ? serial->timing.total.median / r.timing.total.median : 0.0;
      s.speedup = speedup;
      s.efficiency = speedup / ranks_used(r.scheme, cfg);
    }
    s.has_backward = r.has_backward;
    if (r.has_backward) {
      s.train_timing = r.train_timing;
      s.train_floor = r.train_floor;
      s.train = speed(r.forward.flops_per_rank + r.backward.flops_per_rank, r.train_timing.total,
                      r.train_floor, peak_gflops);
      m.any_backward = true;
    }
    if (r.scheme == Scheme::megatron_overlap && megatron) {
      s.forward.hidden = hidden(r.timing, megatron->timing);
      if (r.has_backward) s.train.hidden = hidden(r.train_timing, megatron->train_timing);
    }
    m.schemes.push_back(s);
  }
  const SchemeResult& lead = results.front();
  m.lead = lead.scheme;
  m.lead_forward = lead.timing.total;
  m.lead_gflops =
      gflops(lead.forward.flops_per_rank * ranks_used(lead.scheme, cfg), lead.timing.total.median);
  m.lead_gflops_per_rank = gflops(lead.forward.flops_per_rank, lead.timing.total.median);
  if (megatron)
    m.megatron_floor =
        BenchmarkMetrics::Floor{tally(megatron->forward.formula).bytes(), megatron->floor};
  return m;
}

ScalingMetrics scaling_metrics(const Config& cfg, const std::vector<SchemeResult>& results,
                               const MemoryUse& memory) {
  ScalingMetrics m;
  m.activation = cfg.activation;
  m.dtype = cfg.dtype;
  m.run = param_row(cfg.hidden_size, cfg.intermediate_size(), cfg.projections(), cfg.tp_size,
                    cfg.dtype);
  if (cfg.block != BlockKind::mlp) {
    m.run = attention_param_row(cfg);
    m.attention = attention_heads(cfg);
  }
  if (cfg.block == BlockKind::layer) {
    for (const int tp_size : kLayerScales) m.layer.push_back(layer_scale(cfg, tp_size));
    // The run's row, the layer's: both blocks' weights and the norms.
    const LayerScale whole = layer_scale(cfg, 1), here = layer_scale(cfg, cfg.tp_size);
    const double bytes = double(dtype_bytes(cfg.dtype));
    m.run = {cfg.hidden_size,
             cfg.intermediate_size(),
             cfg.tp_size,
             {whole.params_per_rank, here.params_per_rank},
             whole.params_per_rank * bytes,
             here.params_per_rank * bytes};
  }
  m.example = param_row(kExampleHidden, default_ffn_hidden_size(cfg.activation, kExampleHidden),
                        cfg.projections(), kExampleTp, cfg.dtype);
  m.llama_ffn_hidden_size = default_ffn_hidden_size(Activation::swiglu, cfg.hidden_size);
  m.megatron_ffn_hidden_size = megatron_ffn_hidden_size(cfg.hidden_size);
  m.shares = shares_of(cfg);
  m.lead_weight_bytes = results.front().weight_bytes;
  for (const SchemeResult& r : results)
    m.schemes.push_back({r.scheme, r.weight_bytes, r.boundary_bytes});
  m.memory = memory;
  m.rss_growth = memory.peak_rss - memory.baseline_rss;
  m.rss_over_estimate = m.rss_growth / memory.estimate;
  return m;
}

}  // namespace tp_mlp
