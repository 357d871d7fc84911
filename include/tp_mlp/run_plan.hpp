// run_plan: what a run decides once it is running, beside the configuration, which it never
// changes: how megatron-overlap's forward is cut into token chunks, measured on this machine
// unless --overlap-chunks says.
#pragma once

namespace tp_mlp {

// How megatron-overlap's forward was split into token chunks, and why.
struct OverlapChoice {
  int chunks = 1;
  bool automatic = true;      // chosen by measuring, not by --overlap-chunks
  double comm_share = 0;      // a bare all-reduce of megatron's output / its forward's compute
  bool worth_hiding = false;  // comm_share large enough to try
  long min_chunk_tokens = 0;  // the fewest tokens a chunk may hold (its GEMMs stay efficient)
  // The candidates timed, and megatron-overlap's forward with each (median ms): the choice is
  // the fastest, or one chunk when nothing was worth hiding.
  static constexpr int kMaxCandidates = 4;
  int candidates = 0;
  int candidate_chunks[kMaxCandidates] = {};
  double candidate_ms[kMaxCandidates] = {};
};

struct RunPlan {
  int overlap_chunks = 1;  // megatron-overlap's, once chosen
};

}  // namespace tp_mlp
