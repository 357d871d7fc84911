// Causal attention against its float64 reference, forward and backward, for multi-head,
// grouped-query and multi-query layouts, one whose query heads share their KV heads unevenly
// and one with a KV head no query head reads; sequences within one tile and across several.
// The backward against central differences of the forward (and the reference's against its
// own forward's); causality, bit for bit.
#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "attention_test_data.hpp"
#include "one_rank_model.hpp"
#include "tp_mlp/attention_reference.hpp"
#include "tp_mlp/causal_attention.hpp"

using namespace tp_mlp;

namespace {

constexpr long kBatch = 2;
constexpr long kShort = 5;                                  // one tile
constexpr long kLong = 2 * CausalAttention::kTileRows + 3;  // three, the last partial
constexpr double kFloatTolerance = 1e-5;

struct Case {
  const char* name;
  long head_dim;
  long kv_heads;
  std::vector<int> kv_of;
  long seq_len;
};

Case with(Case c, long head_dim, long seq_len) {
  c.head_dim = head_dim;
  c.seq_len = seq_len;
  return c;
}

// Four query heads each.
const Case kLayouts[] = {
    {"mha", 0, 4, {0, 1, 2, 3}, 0},
    {"gqa", 0, 2, {0, 0, 1, 1}, 0},
    {"gqa_uneven", 0, 2, {1, 0, 1, 1}, 0},  // KV head 1 serves three query heads, 0 one
    {"mqa", 0, 1, {0, 0, 0, 0}, 0},
    {"kv_head_unread", 0, 4, {2, 0, 2, 3}, 0},  // KV head 1 serves none
};

// Every layout at both head sizes, for sequences of each length given.
std::vector<Case> every_case(std::initializer_list<long> seq_lens) {
  std::vector<Case> cases;
  for (const Case& layout : kLayouts)
    for (const long d : {4, 8})
      for (const long s : seq_lens) cases.push_back(with(layout, d, s));
  return cases;
}

// One case's part, built as the program builds it, and its inputs.
struct Attention {
  HeadLayout heads;
  long tokens;
  CausalAttention* part = nullptr;
  std::unique_ptr<Workspace> ws;
  Matrix q, k, v, d_out;

  explicit Attention(const Case& c)
      : heads{c.head_dim, c.kv_heads, c.kv_of},
        tokens(kBatch * c.seq_len),
        ws(build_planned([&](Workspace& w) {
          part = &w.make<CausalAttention>(w, kBatch, c.seq_len, heads, true);
        })),
        q(normal_matrix(tokens, heads.query_heads() * c.head_dim, 11)),
        k(normal_matrix(tokens, c.kv_heads * c.head_dim, 12)),
        v(normal_matrix(tokens, c.kv_heads * c.head_dim, 13)),
        d_out(normal_matrix(tokens, heads.query_heads() * c.head_dim, 14)) {}

  Matrix forward() {
    Matrix out(q.rows(), q.cols());
    part->forward(q, k, v, out);
    return out;
  }
  double loss() { return forward().cast<double>().cwiseProduct(d_out.cast<double>()).sum(); }
};

class AttentionCases : public ::testing::TestWithParam<Case> {};
// Central differences take two forward passes per element: on the short sequences only, whose
// every element they check. The long ones' backward is held to the reference, itself checked
// against central differences of its forward.
class AttentionDifferences : public ::testing::TestWithParam<Case> {};

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  const Case& c = info.param;
  return std::string(c.name) + "_d" + std::to_string(c.head_dim) + "_s" + std::to_string(c.seq_len);
}

}  // namespace

TEST_P(AttentionCases, ForwardMatchesTheReference) {
  const Case& c = GetParam();
  Attention a(c);
  const Matrix out = a.forward();
  MatrixD exact(out.rows(), out.cols());
  exact_causal_attention(a.q.cast<double>(), a.k.cast<double>(), a.v.cast<double>(), c.seq_len,
                         a.heads, exact);
  EXPECT_LT(relative_error(out, exact), kFloatTolerance);
}

TEST_P(AttentionCases, BackwardMatchesTheReference) {
  const Case& c = GetParam();
  Attention a(c);
  Matrix dq(a.q.rows(), a.q.cols()), dk(a.k.rows(), a.k.cols()), dv(a.v.rows(), a.v.cols());
  a.forward();
  a.part->backward(a.q, a.k, a.v, a.d_out, dq, dk, dv);
  MatrixD dq_exact(dq.rows(), dq.cols()), dk_exact(dk.rows(), dk.cols()),
      dv_exact(dv.rows(), dv.cols());
  exact_causal_attention_backward(a.q.cast<double>(), a.k.cast<double>(), a.v.cast<double>(),
                                  a.d_out.cast<double>(), c.seq_len, a.heads, dq_exact, dk_exact,
                                  dv_exact);
  EXPECT_LT(relative_error(dq, dq_exact), kFloatTolerance);
  EXPECT_LT(relative_error(dk, dk_exact), kFloatTolerance);
  EXPECT_LT(relative_error(dv, dv_exact), kFloatTolerance);
  for (long kv = 0; kv < c.kv_heads; ++kv)
    if (std::find(c.kv_of.begin(), c.kv_of.end(), kv) == c.kv_of.end()) {
      EXPECT_TRUE(dk.middleCols(kv * c.head_dim, c.head_dim).isZero(0)) << "KV head " << kv;
      EXPECT_TRUE(dv.middleCols(kv * c.head_dim, c.head_dim).isZero(0)) << "KV head " << kv;
    }
}

// dL/dQ, dL/dK, dL/dV for L = Σ O ⊙ dO, against central differences of the float forward.
TEST_P(AttentionDifferences, BackwardMatchesCentralDifferencesOfTheForward) {
  const Case& c = GetParam();
  Attention a(c);
  Matrix dq(a.q.rows(), a.q.cols()), dk(a.k.rows(), a.k.cols()), dv(a.v.rows(), a.v.cols());
  a.forward();
  a.part->backward(a.q, a.k, a.v, a.d_out, dq, dk, dv);
  constexpr float kStep = 1e-2f;       // rounding (~1e-7 of L) small next to it, and O(step²)
  constexpr double kTolerance = 2e-3;  // truncation too
  const std::pair<Matrix*, const Matrix*> inputs[] = {{&a.q, &dq}, {&a.k, &dk}, {&a.v, &dv}};
  const char* names[] = {"dQ", "dK", "dV"};
  for (int t = 0; t < 3; ++t) {
    Matrix& x = *inputs[t].first;
    const Matrix& grad = *inputs[t].second;
    for (long i = 0; i < x.size(); ++i) {
      const double numeric = central_difference(x, i, kStep, [&] { return a.loss(); });
      EXPECT_NEAR(grad.data()[i], numeric, kTolerance * (1 + std::abs(numeric)))
          << names[t] << " element " << i;
    }
  }
}

// The reference's own backward against central differences of its forward, in double: what
// the float parts are held to is itself right.
TEST_P(AttentionDifferences, ReferenceBackwardMatchesCentralDifferencesOfTheReferenceForward) {
  const Case& c = GetParam();
  Attention a(c);
  MatrixD q = a.q.cast<double>(), k = a.k.cast<double>(), v = a.v.cast<double>();
  const MatrixD d_out = a.d_out.cast<double>();
  MatrixD dq(q.rows(), q.cols()), dk(k.rows(), k.cols()), dv(v.rows(), v.cols());
  exact_causal_attention_backward(q, k, v, d_out, c.seq_len, a.heads, dq, dk, dv);
  MatrixD out(q.rows(), q.cols());
  auto loss = [&] {
    exact_causal_attention(q, k, v, c.seq_len, a.heads, out);
    return out.cwiseProduct(d_out).sum();
  };
  constexpr double kStep = 1e-5, kTolerance = 1e-8;
  const std::pair<MatrixD*, const MatrixD*> inputs[] = {{&q, &dq}, {&k, &dk}, {&v, &dv}};
  for (const auto& [x, grad] : inputs)
    for (long i = 0; i < x->size(); ++i) {
      const double numeric = central_difference(*x, i, kStep, loss);
      EXPECT_NEAR(grad->data()[i], numeric, kTolerance * (1 + std::abs(numeric))) << i;
    }
}

// A later token's K and V change nothing before it, bit for bit: within its tile, where the
// scores right of the diagonal are computed and then masked, and beyond it.
TEST_P(AttentionCases, LaterKeysAndValuesChangeNoEarlierOutput) {
  const Case& c = GetParam();
  Attention a(c);
  for (const long later : {c.seq_len / 2, c.seq_len - 1}) {
    const Matrix before = a.forward();
    for (long sequence = 0; sequence < kBatch; ++sequence) {
      a.k.row(sequence * c.seq_len + later).array() += 3.0f;
      a.v.row(sequence * c.seq_len + later).array() *= -2.0f;
    }
    const Matrix after = a.forward();
    for (long sequence = 0; sequence < kBatch; ++sequence) {
      const long first = sequence * c.seq_len;
      EXPECT_EQ(after.middleRows(first, later), before.middleRows(first, later))
          << "token " << later << " of sequence " << sequence;
      EXPECT_NE(after.row(first + later), before.row(first + later));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Layouts, AttentionCases, ::testing::ValuesIn(every_case({kShort, kLong})),
                         case_name);
INSTANTIATE_TEST_SUITE_P(Layouts, AttentionDifferences, ::testing::ValuesIn(every_case({kShort})),
                         case_name);
