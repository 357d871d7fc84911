// report_text: the four sections on rank 0, modelled on the reference script's, each printed
// as soon as its stage is done. It formats the rows of metrics.hpp and computes nothing.
#pragma once

#include "tp_mlp/config.hpp"
#include "tp_mlp/launch.hpp"
#include "tp_mlp/metrics.hpp"

namespace tp_mlp {

class TextReport {
 public:
  explicit TextReport(bool prints) : prints_(prints) {}

  void banner(const Config& cfg, const Launch& launch) const;
  void verification(const Config& cfg, const VerificationMetrics& m) const;
  void communication(const Config& cfg, const CommunicationMetrics& m) const;
  void benchmark(const Config& cfg, const BenchmarkMetrics& m) const;
  void scaling(const ScalingMetrics& m) const;

 private:
  bool prints_;  // rank 0 prints; the others stay silent
};

}  // namespace tp_mlp
