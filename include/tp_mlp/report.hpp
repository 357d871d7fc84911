// report: the four sections of text on rank 0, and the same facts as one JSON document.
// Each section method prints its text and records its JSON part, so the two can never
// disagree. Nothing here computes a result: it only formats what the run measured.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tp_mlp/analysis.hpp"
#include "tp_mlp/bench.hpp"
#include "tp_mlp/comm.hpp"
#include "tp_mlp/config.hpp"
#include "tp_mlp/verify.hpp"

namespace tp_mlp {

// One direction of one scheme: what theory predicts and what was counted.
struct PassResult {
  CommFormula formula;
  CommStats counted;          // in one pass, by the communication layer
  double flops_per_rank = 0;
};

// Everything the run learnt about one scheme, filled in section by section.
struct SchemeResult {
  Scheme scheme = Scheme::megatron;
  long weight_bytes = 0;               // this rank's W1 and W2, as allocated
  double boundary_bytes = 0;           // activations outside the TP region, per rank
  bool has_backward = false;
  PassResult forward, backward;
  Verification output;                 // Y
  std::vector<Verification> gradients; // dX, dW1, dW2 (db1, db2)
  StepTiming timing;                   // forward passes
  Summary floor;                       // bare collectives of the forward's sizes
  StepTiming train_timing;             // forward + backward
  Summary train_floor;
  bool passed() const;
};

struct Launch {
  int world_size = 1;
  int tp_groups = 1;
  const char* gemm_backend = "";
  double peak_gflops = 0;  // one core's FMA peak, measured
};

struct MemoryUse {
  double baseline_rss = 0;  // rank 0 before allocating the model
  double peak_rss = 0;      // rank 0's high-water mark
  double estimate = 0;      // rank 0's weights, activations and reference, estimated
};

class Report {
 public:
  explicit Report(bool prints) : prints_(prints) {}

  void banner(const Config& cfg, const Launch& launch);
  void verification(const Config& cfg, const std::vector<SchemeResult>& results);
  void communication(const Config& cfg, const std::vector<SchemeResult>& results);
  void benchmark(const Config& cfg, const std::vector<SchemeResult>& results);
  void scaling(const Config& cfg, const std::vector<SchemeResult>& results, const MemoryUse& memory);

  void write_json(const std::string& path) const;  // atomically; no-op where not printing

 private:
  bool prints_;
  double peak_gflops_ = 0;
  nlohmann::json json_;
};

}  // namespace tp_mlp
