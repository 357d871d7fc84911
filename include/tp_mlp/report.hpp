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

// Everything the run learnt about one scheme, filled in section by section.
struct SchemeResult {
  Scheme scheme;
  long weight_bytes = 0;       // this rank's W1 and W2, as allocated
  double flops_per_rank = 0;   // per forward
  Verification verification;
  CommFormula formula;         // what the analysis predicts for one forward
  CommStats counted;           // what the communication layer saw in one forward
  SchemeTiming timing;
  Summary floor;               // bare all-reduces of the same sizes
};

struct Launch {
  int world_size = 1;
  int tp_groups = 1;
  const char* gemm_backend = "";
};

class Report {
 public:
  explicit Report(bool prints) : prints_(prints) {}

  void banner(const Config& cfg, const Launch& launch);
  void verification(const Config& cfg, const std::vector<SchemeResult>& results);
  void communication(const Config& cfg, const std::vector<SchemeResult>& results);
  void benchmark(const Config& cfg, const std::vector<SchemeResult>& results);
  void scaling(const Config& cfg, const std::vector<SchemeResult>& results, double peak_rss_bytes);

  void write_json(const std::string& path) const;  // atomically; no-op where not printing

 private:
  bool prints_;
  nlohmann::json json_;
};

}  // namespace tp_mlp
