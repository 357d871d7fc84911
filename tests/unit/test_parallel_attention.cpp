// The attention block's scheme in a group of one (serial, and megatron at --tp-size 1) against
// its float64 reference: Y, dX and every weight and bias gradient within their bounds, for
// multi-head and grouped-query attention; and a planted wrong KV head is caught.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "one_rank_model.hpp"
#include "tp_mlp/attention_verify.hpp"
#include "tp_mlp/faults.hpp"

using namespace tp_mlp;

namespace {

struct Shape {
  int hidden_size, heads, kv_heads;
};

// The scheme and its reference, built as the program builds them, and their verdicts.
struct OneRankAttention {
  Config cfg;
  World world;
  TpComm tp;
  MlpScheme* scheme = nullptr;
  AttentionReference* reference = nullptr;
  std::unique_ptr<Workspace> ws;
  Matrix x, dy;  // [tokens, H]

  OneRankAttention(Scheme s, const Shape& shape)
      : cfg(options(shape)),
        tp(s == Scheme::serial ? TpComm::group_of_one(world) : TpComm(world, 1)),
        x(cfg.tokens(), cfg.hidden_size),
        dy(cfg.tokens(), cfg.hidden_size) {
    ws = build_planned([&](Workspace& w) {
      scheme = &make_scheme(w, s, cfg, tp);
      reference = &w.make<AttentionReference>(w, cfg);
    });
    fill_block(x, master_input(cfg), cfg.seed, 0, 0);
    fill_block(dy, master_grad_output(cfg), cfg.seed, 0, 0);
    reference->compute(x, dy);
  }

  std::vector<Verification> verify() const {
    const Scheme s = scheme->scheme();
    std::vector<Verification> checks = {
        reference->verify_output(s, scheme->forward(x), scheme->tokens_here(), world)};
    const ConstMatrixRef dx = scheme->backward(dy);
    for (const Verification& g : reference->verify_gradients(s, dx, scheme->tokens_here(),
                                                             scheme->gradients(), x, dy, world))
      checks.push_back(g);
    return checks;
  }

  static Config options(const Shape& shape) {
    Config c;
    c.block = BlockKind::attention;
    c.tp_size = 1;
    c.hidden_size = shape.hidden_size;
    c.num_heads = shape.heads;
    c.num_kv_heads = shape.kv_heads;
    c.batch_size = 2;
    c.seq_len = 7;
    c.backward = c.bias = true;
    return c;
  }
};

class GroupOfOne : public ::testing::TestWithParam<Scheme> {};

TEST_P(GroupOfOne, EveryTensorWithinItsBound) {
  for (const Shape shape : {Shape{32, 4, 4}, Shape{48, 6, 2}, Shape{64, 4, 1}}) {
    OneRankAttention m(GetParam(), shape);
    const std::vector<Verification> checks = m.verify();
    ASSERT_EQ(checks.size(), 10U);  // Y, dX, dWq, dWk, dWv, dWo, dbq, dbk, dbv, dbo
    for (const Verification& v : checks) {
      EXPECT_TRUE(v.passed) << "N=" << shape.heads << " K=" << shape.kv_heads << ": " << v.tensor
                            << " at " << v.max_diff_over_bound << "x its bound";
      // Rigorous where it is tighter, never looser than the cap a mistake must exceed.
      EXPECT_LE(v.tolerance, AttentionReference::kMistake) << v.tensor;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Attention, GroupOfOne, ::testing::Values(Scheme::megatron, Scheme::serial),
                         scheme_test_name);

TEST(ParallelAttention, AWrongKvHeadIsCaught) {
  OneRankAttention m(Scheme::megatron, {48, 6, 2});
  plant_fault(Fault::wrong_kv_head, *m.scheme, m.cfg, m.tp);
  const Verification y = m.verify().front();
  EXPECT_FALSE(y.passed);
  EXPECT_GT(y.max_diff_over_bound, 10);
}

}  // namespace
