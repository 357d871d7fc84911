// The script's formulas and the papers' claims, checked against numbers worked out by hand.
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
constexpr long kY = 4L * 16 * 256;  // elements of [tokens, H]
}  // namespace

TEST(Analysis, MegatronIsOneAllReduceOfTokensTimesHiddenEachWay) {
  for (Direction d : {Direction::forward, Direction::backward}) {
    const CommStats f = tally(comm_formula(Scheme::megatron, script_config(4), d));
    EXPECT_EQ(f.calls(), 1);
    EXPECT_EQ(f[Collective::all_reduce].calls, 1);
    EXPECT_EQ(f.bytes(), kY * 4);
    EXPECT_DOUBLE_EQ(f.ring_bytes_per_rank(4), 2.0 * kY * 4 * 3 / 4);  // 96 KiB
  }
}

TEST(Analysis, NaiveIsTwoAllReducesAndFiveTimesTheBytes) {
  const Config cfg = script_config(4);
  const std::vector<CollectiveCall> naive = comm_formula(Scheme::naive, cfg, Direction::forward);
  const CommStats megatron = tally(comm_formula(Scheme::megatron, cfg, Direction::forward));
  ASSERT_EQ(tally(naive)[Collective::all_reduce].calls, 2);
  EXPECT_EQ(naive[0].elements, 4 * kY);  // [tokens, 4H] before GeLU
  EXPECT_EQ(naive[1].elements, kY);      // [tokens, H] after W2
  EXPECT_EQ(tally(naive).bytes(), 5 * megatron.bytes());
}

TEST(Analysis, SequenceParallelMovesTheSameRingBytesAsTheAllReduce) {
  // Korthikanti et al. 2022: all-gather + reduce-scatter = one all-reduce, per direction.
  for (int tp : {2, 4, 8})
    for (Direction d : {Direction::forward, Direction::backward}) {
      const Config cfg = script_config(tp);
      const CommStats sp = tally(comm_formula(Scheme::megatron_sp, cfg, d));
      EXPECT_EQ(sp[Collective::all_gather].calls, 1);
      EXPECT_EQ(sp[Collective::reduce_scatter].calls, 1);
      EXPECT_DOUBLE_EQ(sp.ring_bytes_per_rank(tp),
                       tally(comm_formula(Scheme::megatron, cfg, d)).ring_bytes_per_rank(tp));
    }
}

TEST(Analysis, CountedStatsUseTheSameRingRule) {
  CommStats s;
  s[Collective::all_reduce].bytes = 1000;
  s[Collective::all_gather].bytes = 1000;
  s[Collective::reduce_scatter].bytes = 1000;
  EXPECT_DOUBLE_EQ(s.ring_bytes_per_rank(4), 2 * 750.0 + 750.0 + 750.0);
}

TEST(Analysis, SerialCommunicatesNothingAndOneRankMovesNothing) {
  EXPECT_EQ(tally(comm_formula(Scheme::serial, script_config(4), Direction::forward)).calls(), 0);
  EXPECT_EQ(tally(comm_formula(Scheme::megatron, script_config(1), Direction::forward))
                .ring_bytes_per_rank(1),
            0.0);
}

TEST(Analysis, FlopsSplitEvenlyOverRanksAndBackwardIsTwiceForward) {
  const Config cfg = script_config(4);
  const double total = 2.0 * 2 * 64 * 256 * 1024;  // two GEMMs of tokens x H x 4H
  EXPECT_DOUBLE_EQ(flops_per_rank(Scheme::serial, cfg, Direction::forward), total);
  EXPECT_DOUBLE_EQ(flops_per_rank(Scheme::megatron, cfg, Direction::forward), total / 4);
  EXPECT_DOUBLE_EQ(flops_per_rank(Scheme::naive, cfg, Direction::forward), total / 4);
  EXPECT_DOUBLE_EQ(flops_per_rank(Scheme::megatron, cfg, Direction::backward), total / 2);
}

TEST(Analysis, ParametersAreEightHSquaredOverT) {
  const ParamFormula p = param_formula(4096, 4L * 4096, 1, 8);  // the script's example
  EXPECT_DOUBLE_EQ(p.total, 134217728.0);
  EXPECT_DOUBLE_EQ(p.per_rank, 16777216.0);
}

TEST(Analysis, SequenceParallelSplitsTheBoundaryActivations) {
  Config cfg = script_config(4);
  cfg.backward = true;
  EXPECT_DOUBLE_EQ(boundary_activation_bytes(Scheme::megatron, cfg), 4.0 * kY * 4);
  EXPECT_DOUBLE_EQ(boundary_activation_bytes(Scheme::megatron_sp, cfg), 4.0 * kY * 4 / 4);
}

namespace {
Config swiglu_config(int tp, long ffn) {
  Config cfg = script_config(tp);
  cfg.activation = Activation::swiglu;
  cfg.ffn_hidden_size = ffn;
  return cfg;
}
}  // namespace

TEST(Analysis, FfnSizingRulesOfLlamaAndMegatron) {
  // LLaMA's 7B: H 4096 -> 11008; Megatron-LM rounds the same 2/3·4H down to 64s: 10880.
  EXPECT_EQ(default_ffn_hidden_size(Activation::swiglu, 4096), 11008);
  EXPECT_EQ(megatron_ffn_hidden_size(4096), 10880);
  EXPECT_EQ(default_ffn_hidden_size(Activation::gelu, 4096), 4 * 4096);
  EXPECT_EQ(default_ffn_hidden_size(Activation::swiglu, 64), 256);  // 170 rounded up to 256
}

TEST(Analysis, GatedMlpHasThreeHFParameters) {
  const ParamFormula gated = param_formula(4096, 11008, 2, 8);
  EXPECT_DOUBLE_EQ(gated.total, 3.0 * 4096 * 11008);
  EXPECT_DOUBLE_EQ(gated.per_rank, 3.0 * 4096 * 1376);  // 11008 / 8
  // Uneven: F = 170 over 3 ranks, the widest holds 57 columns.
  EXPECT_DOUBLE_EQ(param_formula(64, 170, 2, 3).per_rank, 3.0 * 64 * 57);
}

TEST(Analysis, NaiveSwigluSumsBothPreActivations) {
  const Config cfg = swiglu_config(4, 680);
  const std::vector<CollectiveCall> naive = comm_formula(Scheme::naive, cfg, Direction::forward);
  ASSERT_EQ(naive.size(), 2u);
  EXPECT_EQ(naive[0].elements, 64L * 2 * 680);  // [tokens, 2F]: gate and up
  // Megatron's one all-reduce of [tokens, H] is the same for either activation.
  EXPECT_EQ(tally(comm_formula(Scheme::megatron, cfg, Direction::forward)).bytes(), kY * 4);
}

TEST(Analysis, FlopsAreTheWidestRanksAndSwigluAddsAGemm) {
  // GeLU: 2 GEMMs forward, 4 backward; SwiGLU: 3 and 6 (the first layer is twice as wide).
  const Config gelu = script_config(1);
  const Config swiglu = swiglu_config(1, 1024);
  EXPECT_DOUBLE_EQ(flops_per_rank(Scheme::megatron, swiglu, Direction::forward),
                   1.5 * flops_per_rank(Scheme::megatron, gelu, Direction::forward));
  EXPECT_DOUBLE_EQ(flops_per_rank(Scheme::megatron, swiglu, Direction::backward),
                   2 * flops_per_rank(Scheme::megatron, swiglu, Direction::forward));
  // F = 1022 over 4 ranks: 256, 256, 255, 255 columns; rank 0 does 256 of them.
  Config uneven = script_config(4);
  uneven.ffn_hidden_size = 1022;
  EXPECT_DOUBLE_EQ(flops_per_rank(Scheme::megatron, uneven, Direction::forward),
                   2.0 * 2 * 64 * 256 * 256);
}

TEST(Analysis, SequenceParallelDealsTokensInRows) {
  Config cfg = script_config(3);  // 64 tokens over 3 ranks: 22, 21, 21
  const std::vector<CollectiveCall> sp = comm_formula(Scheme::megatron_sp, cfg, Direction::forward);
  EXPECT_EQ(sp[0].rows(), 64);
  EXPECT_EQ(sp[0].row_length, 256);
  cfg.sequence_parallel = true;
  EXPECT_DOUBLE_EQ(boundary_activation_bytes(Scheme::megatron_sp, cfg), 2.0 * 22 * 256 * 4);
}

TEST(Analysis, TheLayerIsTwoAllReducesEachWayPlusReplicasAndUnderSpTheNorms) {
  Config cfg = script_config(4);
  cfg.block = BlockKind::layer;
  cfg.num_heads = 8;
  cfg.num_kv_heads = 2;  // K < T: each KV head on two ranks, 2 replicated of d = 32
  cfg.backward = true;
  const CommStats forward = tally(comm_formula(Scheme::megatron, cfg, Direction::forward));
  EXPECT_EQ(forward[Collective::all_reduce].calls, 2);  // attention's g, the MLP's g
  EXPECT_EQ(forward.bytes(), 2 * kY * 4);
  const CommStats backward = tally(comm_formula(Scheme::megatron, cfg, Direction::backward));
  EXPECT_EQ(backward[Collective::all_reduce].calls, 3);  // two f's and the replicas'
  EXPECT_EQ(backward.bytes(), (2 * kY + 256L * 2 * 2 * 32) * 4);
  // Under sequence parallelism each block's all-reduce becomes an all-gather and a
  // reduce-scatter, and backward the norms' 2 (LayerNorm: 4) x H gradients are summed.
  const CommStats sp = tally(comm_formula(Scheme::megatron_sp, cfg, Direction::backward));
  EXPECT_EQ(sp[Collective::all_gather].calls, 2);
  EXPECT_EQ(sp[Collective::reduce_scatter].calls, 2);
  EXPECT_EQ(sp[Collective::all_reduce].calls, 2);
  // The replicas', and the norms' 4 x H (GeLU: LayerNorm, with biases).
  EXPECT_EQ(sp[Collective::all_reduce].bytes, (256L * 2 * 2 * 32 + 4L * 256) * 4);
  EXPECT_EQ(comm_formula(Scheme::serial, cfg, Direction::backward).size(), 0U);
}

TEST(Analysis, TheLayersScaleCountsReplicasAndTheWidestRank) {
  Config cfg = script_config(1);
  cfg.block = BlockKind::layer;
  cfg.num_heads = 4;
  cfg.num_kv_heads = 1;
  const double H = 256, d = 64, F = 4 * H;
  const LayerScale one = layer_scale(cfg, 1), four = layer_scale(cfg, 4);
  EXPECT_DOUBLE_EQ(one.params_per_rank, 2 * H * (4 + 1) * d + 2 * H * F + 4 * H);
  EXPECT_EQ(one.kv_heads_held, 1);
  EXPECT_EQ(four.kv_heads_held, 4);  // the one KV head on every rank
  EXPECT_DOUBLE_EQ(four.replica_params, 3 * 2 * H * d);
  EXPECT_DOUBLE_EQ(four.params_per_rank, H * (2 * d + 2 * d) + 2 * H * F / 4 + 4 * H);
}
