// results: what a run measured, counted and checked, as plain data with no MPI and no
// printing. The program fills these in as it goes; metrics.hpp turns them into the numbers
// the report prints.
#pragma once

#include <string>
#include <vector>

#include "tp_mlp/analysis.hpp"
#include "tp_mlp/collective.hpp"
#include "tp_mlp/config.hpp"

namespace tp_mlp {

struct Summary {  // milliseconds
  double mean = 0, median = 0, min = 0, max = 0;
};

// Per iteration, the slowest rank's: a step is done only when every rank is.
struct StepTiming {
  Summary total;         // the whole step
  Summary comm;          // inside the collectives
  Summary compute;       // the rest: GEMMs, the activation, biases
  Summary compute_mean;  // the mean over the ranks that computed: compute / this = imbalance
};

// One tensor of one scheme against the reference. Each element has its own error bound; the
// tensor passes when every element is within it.
struct Verification {
  std::string tensor;  // "Y", "dX", "dW1", ...
  double max_abs_diff = 0;
  double max_rel_diff = 0;         // max_abs_diff / max |reference|
  double tolerance = 0;            // the loosest element's bound / max |reference|
  double max_diff_over_bound = 0;  // the verdict: at most 1 passes
  long accumulated_terms = 0;      // terms summed along the longest path to an element
  bool passed = false;
};

// One direction of one scheme: what theory predicts and what was counted.
struct PassResult {
  std::vector<CollectiveCall> formula;
  CommStats counted;  // in one pass, by the communication layer
  double flops_per_rank = 0;
};

// Everything the run learnt about one scheme, filled in stage by stage.
struct SchemeResult {
  Scheme scheme = Scheme::megatron;
  long weight_bytes = 0;      // this rank's W1 and W2, as allocated
  double boundary_bytes = 0;  // activations outside the TP region, per rank
  bool has_backward = false;
  PassResult forward, backward;
  Verification output;                  // Y
  std::vector<Verification> gradients;  // dX, dW1, dW2 (db1, db2)
  StepTiming timing;                    // forward passes
  Summary floor;                        // bare collectives of the forward's sizes
  StepTiming train_timing;              // forward + backward
  Summary train_floor;
};

// How megatron-overlap's forward was split into token chunks, and why.
struct OverlapChoice {
  int chunks = 1;
  bool automatic = true;      // chosen by measuring, not by --overlap-chunks
  double comm_share = 0;      // a bare all-reduce of megatron's output / its forward's compute
  bool worth_hiding = false;  // comm_share large enough to try
  long min_chunk_tokens = 0;  // the fewest tokens a chunk may hold (its GEMMs stay efficient)
};

// The launch and the machine, as the banner describes them.
struct Launch {
  int world_size = 1;
  int tp_groups = 1;
  const char* gemm_backend = "";
  const char* bf16_gemm = "";   // how a bf16 product runs here
  double peak_gflops = 0;       // one core's fp32 FMA peak, measured
  double bf16_peak_gflops = 0;  // its bf16 dot-product peak; 0 without native bf16
  int ranks_on_node = 1;        // rank 0's node
  int cores_on_node = 1;        // the CPUs its ranks may run on
  bool oversubscribed = false;  // more ranks than cores on some node
};

struct MemoryUse {
  double baseline_rss = 0;  // rank 0 before allocating the model
  double peak_rss = 0;      // rank 0's high-water mark
  double estimate = 0;      // rank 0's tensors, estimated before the run
};

}  // namespace tp_mlp
