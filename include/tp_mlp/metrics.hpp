// metrics: the run's results turned into the numbers the report shows, as plain rows: ratios,
// bounds, speed-ups, counted traffic against the formulas. No MPI, no printing: every number
// the text and the JSON print is computed here, once, and can be unit-tested.
#pragma once

#include <optional>
#include <vector>

#include "tp_mlp/analysis.hpp"
#include "tp_mlp/collective.hpp"
#include "tp_mlp/config.hpp"
#include "tp_mlp/head_sharding.hpp"
#include "tp_mlp/launch.hpp"
#include "tp_mlp/memory.hpp"
#include "tp_mlp/run_plan.hpp"
#include "tp_mlp/scheme_result.hpp"

namespace tp_mlp {

// ---- 1. CORRECTNESS VERIFICATION
struct SchemeChecks {
  Scheme scheme = Scheme::megatron;
  Verification output;                  // Y
  std::vector<Verification> gradients;  // with --backward
  std::vector<Verification> blocks;     // a layer's: each block from its own input
  std::vector<TensorDigest> digests;    // Y, and with --backward dX and every weight gradient
  bool copies_match = true;             // every copy of every tensor had the same digest
  // Y and every gradient within their bounds; for an invariant scheme, every copy alike too.
  bool passed = false;
};
struct VerificationMetrics {
  std::vector<SchemeChecks> schemes;
  bool any_gradients = false;
  bool any_blocks = false;
  bool any_invariant = false;  // then the digests are shown
  bool passed = false;         // every scheme: the run's verdict
};
VerificationMetrics verification_metrics(const std::vector<SchemeResult>& results);

// ---- The attention block's heads (--block attention): who holds which, for every section.
struct AttentionHeads {
  long query_heads = 0;  // N
  long kv_heads = 0;     // K
  long head_size = 0;    // d = H/N
  double rope_theta = 0;
  std::vector<HeadShard> ranks;  // each rank's of a TP group, in rank order
  std::vector<long> replicated;  // the KV heads held by several ranks
  long kv_heads_held = 0;        // every rank's KV heads, counted once per rank
};
AttentionHeads attention_heads(const Config& cfg);

// ---- 2. COMMUNICATION ANALYSIS
// The attention block's collectives, one pass of megatron each: the formulas (bytes of the
// whole tensors) against what the communication layer counted.
struct AttentionTraffic {
  bool layer = false;        // the layer's: attention's all-reduces and its MLP's
  long y_bytes = 0;          // Y's all-reduce(s) forward, and dX's backward: tokens·H·B each
  long y_element_bytes = 4;  // B: the reduce dtype's (--reduce-dtype, by default --dtype)
  long replica_bytes = 0;    // the replicated KV heads' gradients: (H + bias)·2·R·d·4; 0: none
  CommStats forward, backward;  // counted
  bool has_backward = false;
  bool matches_formula = false;
};

struct PassTraffic {
  Scheme scheme = Scheme::megatron;
  Direction direction = Direction::forward;
  CommStats counted;        // in one real pass
  CommStats formula;        // what analysis.hpp predicts
  double counted_ring = 0;  // bytes each rank sends with ring algorithms, per rank
  double formula_ring = 0;
  bool matches_formula = false;
  double flops_per_rank = 0;
};
struct CommunicationMetrics {
  // The script's figures, for the first scheme's forward pass.
  Scheme lead = Scheme::megatron;
  long lead_allreduce_calls = 0;
  long lead_calls = 0;
  long bytes_per_call = 0;
  long elements_per_call = 0;
  double ring_per_rank = 0;
  double ring_total = 0;
  std::vector<PassTraffic> passes;  // every scheme's forward, then its backward
  std::optional<double> naive_over_megatron_bytes;
  struct SequenceParallel {
    double sp_ring = 0, megatron_ring = 0;  // per rank, per forward
    double sp_boundary = 0, megatron_boundary = 0;
  };
  std::optional<SequenceParallel> sequence_parallel;
  bool any_invariant = false;                 // *-inv schemes ran: their integers are explained
  std::optional<AttentionTraffic> attention;  // --block attention or layer, megatron ran
};
CommunicationMetrics communication_metrics(const Config& cfg,
                                           const std::vector<SchemeResult>& results);

// ---- 3. BENCHMARK
struct StepSpeed {
  double gflops_per_rank = 0;
  double percent_of_peak = 0;
  double bound_ms = 0;  // this rank's FLOPs at the FMA peak, plus the floor
  double over_bound = 0;
  // With communication hidden behind computation, the limit is the larger of the two.
  double overlapped_bound_ms = 0;  // max(FLOPs at the peak, floor)
  // Of megatron's time in its collectives (measured without overlap, in the same run), the
  // share this scheme saved: (megatron's time − time) / megatron's comm, which is
  // 1 − (time − megatron's compute) / megatron's comm.
  std::optional<double> hidden;
};
struct SchemeSpeed {
  Scheme scheme = Scheme::megatron;
  StepTiming timing;
  Summary floor;
  std::optional<double> comm_over_floor;  // when the scheme communicates
  double compute_imbalance = 1;           // the slowest rank's compute / the mean rank's
  StepSpeed forward;
  std::optional<double> speedup;     // serial time / this scheme's, when serial ran
  std::optional<double> efficiency;  // speed-up / ranks used
  bool has_backward = false;
  StepTiming train_timing;  // forward + backward
  Summary train_floor;
  StepSpeed train;
};
struct BenchmarkMetrics {
  double peak_gflops = 0;      // what % peak and the bound are against
  bool peak_is_bf16 = false;   // the bf16 dot-product peak, or the fp32 FMA peak
  bool uneven_shards = false;  // then compute_imbalance is worth a column
  // Ranks that outnumber their cores take turns on them: their times measure that.
  bool oversubscribed = false;
  int ranks_on_node = 1;
  int cores_on_node = 1;
  std::vector<SchemeSpeed> schemes;
  std::optional<OverlapChoice> overlap;  // megatron-overlap ran: show what it hid
  bool has_serial = false;
  bool any_backward = false;
  Scheme lead = Scheme::megatron;
  Summary lead_forward;
  double lead_gflops = 0;  // the whole model's, over every rank it used
  double lead_gflops_per_rank = 0;
  struct Floor {
    long bytes = 0;
    Summary all_reduce;
  };
  std::optional<Floor> megatron_floor;  // bare all-reduce of megatron's message
};
BenchmarkMetrics benchmark_metrics(const Config& cfg, const std::vector<SchemeResult>& results,
                                   const Launch& launch,
                                   const std::optional<OverlapChoice>& overlap = std::nullopt);

// ---- 4. SCALING ANALYSIS
struct SchemeMemory {
  Scheme scheme = Scheme::megatron;
  long weight_bytes = 0;  // allocated
  double boundary_bytes = 0;
};
// The script's parameter count for one H and T, and what it weighs.
struct ParamRow {
  long hidden_size = 0;
  long ffn_hidden_size = 0;
  int tp_size = 1;
  ParamFormula params;
  double bytes_total = 0;
  double bytes_per_rank = 0;
};
// How a length is dealt out over the T ranks of a group (partition.hpp): `wide` on the first
// `wide_ranks` ranks, one less on the rest.
struct Share {
  long length = 0;
  int ranks = 1;
  long wide = 0;
  int wide_ranks = 0;
  bool even() const { return wide_ranks == ranks; }
  std::vector<long> per_rank() const;  // in rank order
};
Share share_of(long length, int ranks);
struct Shares {
  Share ffn_columns;                 // F, the first layer's columns and W2's rows
  std::optional<Share> hidden_rows;  // H, when the naive scheme runs
  std::optional<Share> tokens;       // the tokens, under sequence parallelism
  std::optional<Share> query_heads;  // N, the attention block's query heads
  bool uneven() const;
};
struct ScalingMetrics {
  Activation activation = Activation::gelu;
  DType dtype = DType::fp32;  // what the weights are stored in
  ParamRow run;
  ParamRow example;                // the script's: H = 4096, T = 8, with this run's activation
  long llama_ffn_hidden_size = 0;  // the sizing rules for this H, for SwiGLU
  long megatron_ffn_hidden_size = 0;
  Shares shares;
  long lead_weight_bytes = 0;
  std::vector<SchemeMemory> schemes;
  MemoryUse memory;
  std::optional<AttentionHeads> attention;  // --block attention or layer: its heads
  std::vector<LayerScale> layer;            // --block layer: at T = 1, 2, 4, 8
  double rss_growth = 0;                    // rank 0's peak above its baseline
  double rss_over_estimate = 0;             // that growth / the estimate
};
ScalingMetrics scaling_metrics(const Config& cfg, const std::vector<SchemeResult>& results,
                               const MemoryUse& memory);

// Everything the report shows, for the JSON document written at the end.
struct Metrics {
  VerificationMetrics verification;
  CommunicationMetrics communication;
  BenchmarkMetrics benchmark;
  ScalingMetrics scaling;
};

}  // namespace tp_mlp
