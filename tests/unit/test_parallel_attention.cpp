// The attention block's scheme in a group of one (serial, and megatron at --tp-size 1) against
// its float64 reference: Y, dX and every weight and bias gradient within their bounds, for
// multi-head and grouped-query attention; and a planted wrong KV head is caught.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "attention_model.hpp"
#include "tp_mlp/faults.hpp"

using namespace tp_mlp;

namespace {

struct Shape {
  int heads, kv_heads, head_size;
};

constexpr int kSeqLen = 7;

AttentionModel one_rank(Scheme scheme, const Shape& shape) {
  return {scheme, attention_config(1, shape.heads, shape.kv_heads, shape.head_size, kSeqLen, 0)};
}

class GroupOfOne : public ::testing::TestWithParam<Scheme> {};

TEST_P(GroupOfOne, EveryTensorWithinItsBound) {
  for (const Shape shape : {Shape{4, 4, 8}, Shape{6, 2, 8}, Shape{4, 1, 16}}) {
    const AttentionModel m = one_rank(GetParam(), shape);
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
  const AttentionModel m = one_rank(Scheme::megatron, {6, 2, 8});
  plant_fault(Fault::wrong_kv_head, *m.scheme, m.cfg, m.tp);
  const Verification y = m.verify().front();
  EXPECT_FALSE(y.passed);
  EXPECT_GT(y.max_diff_over_bound, 10);
}

}  // namespace
