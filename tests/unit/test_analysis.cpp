// The script's formulas, checked against numbers worked out by hand.
#include <gtest/gtest.h>

#include "tp_mlp/analysis.hpp"

using namespace tp_mlp;

namespace {
Config script_config(int tp) {  // batch 4, seq 16, hidden 256
  Config cfg;
  cfg.tp_size = tp;
  cfg.hidden_size = 256;
  return cfg;
}
}  // namespace

TEST(Analysis, MegatronIsOneAllReduceOfTokensTimesHidden) {
  const CommFormula f = comm_formula(Scheme::megatron, script_config(4));
  EXPECT_EQ(f.calls(), 1);
  EXPECT_EQ(f.elements(), 4 * 16 * 256);
  EXPECT_EQ(f.bytes(), 4 * 16 * 256 * 4);
  EXPECT_DOUBLE_EQ(f.ring_bytes_per_rank(4), 2.0 * 65536 * 3 / 4);  // 96 KiB
}

TEST(Analysis, NaiveIsTwoAllReducesAndFiveTimesTheBytes) {
  const Config cfg = script_config(4);
  const CommFormula naive = comm_formula(Scheme::naive, cfg);
  const CommFormula megatron = comm_formula(Scheme::megatron, cfg);
  EXPECT_EQ(naive.calls(), 2);
  EXPECT_EQ(naive.allreduce_elements[0], 4 * 16 * 1024);  // [tokens, 4H] before GeLU
  EXPECT_EQ(naive.allreduce_elements[1], 4 * 16 * 256);   // [tokens, H] after W2
  EXPECT_EQ(naive.bytes(), 5 * megatron.bytes());
}

TEST(Analysis, SerialCommunicatesNothingAndOneRankMovesNothing) {
  EXPECT_EQ(comm_formula(Scheme::serial, script_config(4)).calls(), 0);
  EXPECT_EQ(comm_formula(Scheme::megatron, script_config(1)).ring_bytes_per_rank(1), 0.0);
}

TEST(Analysis, FlopsSplitEvenlyOverRanks) {
  const Config cfg = script_config(4);
  const double total = 2.0 * 2 * 64 * 256 * 1024;  // two GEMMs of tokens x H x 4H
  EXPECT_DOUBLE_EQ(forward_flops_per_rank(Scheme::serial, cfg), total);
  EXPECT_DOUBLE_EQ(forward_flops_per_rank(Scheme::megatron, cfg), total / 4);
  EXPECT_DOUBLE_EQ(forward_flops_per_rank(Scheme::naive, cfg), total / 4);
}

TEST(Analysis, ParametersAreEightHSquaredOverT) {
  const ParamFormula p = param_formula(4096, 8);  // the script's example
  EXPECT_DOUBLE_EQ(p.total, 134217728.0);
  EXPECT_DOUBLE_EQ(p.per_rank, 16777216.0);
}
