// The report's derived numbers, from hand-made results: each is computed once, here, and the
// printers only format it.
#include <gtest/gtest.h>

#include "tp_mlp/metrics.hpp"

using namespace tp_mlp;

namespace {

Config config(int tp) {
  Config cfg;
  cfg.tp_size = tp;
  cfg.hidden_size = 256;
  return cfg;
}

Summary flat(double ms) { return {ms, ms, ms, ms}; }

Launch launch_with_peak(double peak_gflops) {
  Launch launch;
  launch.peak_gflops = peak_gflops;
  return launch;
}

// A scheme as the program would have filled it in: formula, counted traffic as the formula
// says, and a forward time.
SchemeResult result(Scheme scheme, const Config& cfg, double forward_ms, double floor_ms = 0) {
  SchemeResult r;
  r.scheme = scheme;
  r.forward.formula = comm_formula(scheme, cfg, Direction::forward);
  r.forward.counted = tally(r.forward.formula);
  r.forward.flops_per_rank = flops_per_rank(scheme, cfg, Direction::forward);
  r.output = {"Y", 1e-7, 1e-7, 1e-5, 0.01, 5L * cfg.hidden_size, true};
  r.timing.total = flat(forward_ms);
  r.timing.comm = flat(floor_ms * 2);
  r.floor = flat(floor_ms);
  return r;
}

}  // namespace

TEST(Metrics, OneFailedGradientFailsItsSchemeAndTheRun) {
  const Config cfg = config(2);
  std::vector<SchemeResult> results = {result(Scheme::megatron, cfg, 1),
                                       result(Scheme::serial, cfg, 2)};
  results[0].gradients = {{"dX", 0, 0, 1, 0, 1, true}, {"dW1", 1, 1, 1e-5, 1e5, 1, false}};
  const VerificationMetrics m = verification_metrics(results);
  EXPECT_FALSE(m.schemes[0].passed);
  EXPECT_TRUE(m.schemes[1].passed);
  EXPECT_TRUE(m.any_gradients);
  EXPECT_FALSE(m.passed);
  results[0].gradients[1].passed = true;
  EXPECT_TRUE(verification_metrics(results).passed);
}

TEST(Metrics, CountedTrafficAgreesWithTheFormulaOnlyWhenEveryKindMatches) {
  const Config cfg = config(4);
  std::vector<SchemeResult> results = {result(Scheme::megatron, cfg, 1),
                                       result(Scheme::naive, cfg, 1)};
  CommunicationMetrics m = communication_metrics(cfg, results);
  ASSERT_EQ(m.passes.size(), 2u);
  EXPECT_TRUE(m.passes[0].matches_formula);
  EXPECT_EQ(m.lead_allreduce_calls, 1);
  EXPECT_EQ(m.bytes_per_call, 4L * 16 * 256 * 4);
  EXPECT_EQ(m.elements_per_call, 4L * 16 * 256);
  EXPECT_DOUBLE_EQ(m.ring_per_rank, 2.0 * double(m.bytes_per_call) * 3 / 4);
  EXPECT_DOUBLE_EQ(m.ring_total, 4 * m.ring_per_rank);
  ASSERT_TRUE(m.naive_over_megatron_bytes);
  EXPECT_DOUBLE_EQ(*m.naive_over_megatron_bytes, 5.0);
  EXPECT_FALSE(m.sequence_parallel);

  // A reduction the scheme forgot, or one of the wrong kind, is a mismatch.
  results[0].forward.counted = CommStats{};
  EXPECT_FALSE(communication_metrics(cfg, results).passes[0].matches_formula);
  results[0].forward.counted.add({Collective::reduce_scatter, 4L * 16 * 256});
  EXPECT_FALSE(communication_metrics(cfg, results).passes[0].matches_formula);
}

TEST(Metrics, BoundIsFlopsAtPeakPlusTheFloor) {
  const Config cfg = config(2);
  const double flops = flops_per_rank(Scheme::megatron, cfg, Direction::forward);
  const double peak = 100;  // GFLOP/s
  const double compute_ms = flops / (peak * 1e6);
  const std::vector<SchemeResult> results = {result(Scheme::megatron, cfg, 2 * compute_ms, 0.5)};
  const BenchmarkMetrics m = benchmark_metrics(cfg, results, launch_with_peak(peak));
  const StepSpeed& s = m.schemes[0].forward;
  EXPECT_DOUBLE_EQ(s.bound_ms, compute_ms + 0.5);
  EXPECT_DOUBLE_EQ(s.over_bound, 2 * compute_ms / (compute_ms + 0.5));
  EXPECT_DOUBLE_EQ(s.percent_of_peak, 50);
  EXPECT_DOUBLE_EQ(*m.schemes[0].comm_over_floor, 2.0);
  EXPECT_FALSE(m.schemes[0].speedup);  // no serial run to compare with
}

TEST(Metrics, SpeedupAndEfficiencyAreAgainstSerialOnOneRank) {
  const Config cfg = config(4);
  const std::vector<SchemeResult> results = {result(Scheme::megatron, cfg, 2, 0.1),
                                             result(Scheme::serial, cfg, 6)};
  const BenchmarkMetrics m = benchmark_metrics(cfg, results, launch_with_peak(100));
  EXPECT_TRUE(m.has_serial);
  EXPECT_DOUBLE_EQ(*m.schemes[0].speedup, 3.0);
  EXPECT_DOUBLE_EQ(*m.schemes[0].efficiency, 0.75);  // 3x on 4 ranks
  EXPECT_DOUBLE_EQ(*m.schemes[1].efficiency, 1.0);   // serial uses one rank
  EXPECT_FALSE(m.schemes[1].comm_over_floor);        // it communicates nothing
  // The whole model's rate counts every rank the scheme used.
  EXPECT_DOUBLE_EQ(m.lead_gflops, 4 * m.lead_gflops_per_rank);
  ASSERT_TRUE(m.megatron_floor);
  EXPECT_EQ(m.megatron_floor->bytes, 4L * 16 * 256 * 4);
}

TEST(Metrics, ScalingWeighsTheScriptsFormulasAndTheMemoryUsed) {
  const Config cfg = config(4);
  std::vector<SchemeResult> results = {result(Scheme::megatron, cfg, 1)};
  results[0].weight_bytes = 8L * 256 * 256 * 4 / 4;
  const ScalingMetrics m = scaling_metrics(cfg, results, {100, 300, 400});
  EXPECT_DOUBLE_EQ(m.run.params.total, 8.0 * 256 * 256);
  EXPECT_DOUBLE_EQ(m.run.bytes_per_rank, double(results[0].weight_bytes));
  EXPECT_EQ(m.example.hidden_size, 4096);
  EXPECT_DOUBLE_EQ(m.example.params.per_rank, 16777216.0);
  EXPECT_DOUBLE_EQ(m.rss_growth, 200);
  EXPECT_DOUBLE_EQ(m.rss_over_estimate, 0.5);
}
