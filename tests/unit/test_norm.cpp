// RMSNorm and LayerNorm against their float64 reference, forward and backward, on rows whose
// mean is large next to their spread (where mean(x²) − μ² would cancel); the backward against
// central differences of the forward, and the reference's against its own forward's.
#include <cmath>
#include <string>

#include <gtest/gtest.h>

#include "attention_test_data.hpp"
#include "one_rank_model.hpp"
#include "tp_mlp/attention_reference.hpp"
#include "tp_mlp/norm.hpp"

using namespace tp_mlp;

namespace {

constexpr long kRows = 10, kWidth = 16;
constexpr float kEps = 1e-5f;
constexpr float kOffset = 8;  // each row's mean, against a spread of 1
constexpr double kFloatTolerance = 1e-5;

// A norm built as the program builds its parts, with parameters and inputs.
struct BuiltNorm {
  NormKind kind;
  Norm* norm = nullptr;
  std::unique_ptr<Workspace> ws;
  Matrix x, dy;

  explicit BuiltNorm(NormKind k)
      : kind(k),
        ws(build_planned(
            [&](Workspace& w) { norm = &w.make<Norm>(w, kind, kRows, kWidth, kEps, true); })),
        x(normal_matrix(kRows, kWidth, 21).array() + kOffset),
        dy(normal_matrix(kRows, kWidth, 22)) {
    norm->weight() = normal_matrix(1, kWidth, 23);
    if (kind == NormKind::layer) norm->bias() = normal_matrix(1, kWidth, 24);
  }
  bool has_bias() const { return kind == NormKind::layer; }
  MatrixD w() const { return norm->weight().cast<double>(); }
  MatrixD b() const {
    return has_bias() ? MatrixD(norm->bias().cast<double>()) : MatrixD(0, kWidth);
  }
  double loss() {
    norm->forward(x);
    return norm->output().cast<double>().cwiseProduct(dy.cast<double>()).sum();
  }
};

class Norms : public ::testing::TestWithParam<NormKind> {};

std::string kind_name(const ::testing::TestParamInfo<NormKind>& info) {
  return info.param == NormKind::rms ? "rms" : "layer";
}

}  // namespace

TEST_P(Norms, ForwardMatchesTheReference) {
  BuiltNorm n(GetParam());
  n.norm->forward(n.x);
  MatrixD exact(kRows, kWidth);
  exact_norm(n.kind, n.x.cast<double>(), n.w(), n.b(), kEps, exact);
  EXPECT_LT(relative_error(n.norm->output(), exact), kFloatTolerance);
}

TEST_P(Norms, BackwardMatchesTheReference) {
  BuiltNorm n(GetParam());
  n.norm->forward(n.x);
  n.norm->backward(n.x, n.dy);
  MatrixD dx(kRows, kWidth), dw(1, kWidth), db(n.has_bias() ? 1 : 0, kWidth);
  exact_norm_backward(n.kind, n.x.cast<double>(), n.w(), n.dy.cast<double>(), kEps, dx, dw, db);
  EXPECT_LT(relative_error(n.norm->input_grad(), dx), kFloatTolerance);
  EXPECT_LT(relative_error(n.norm->weight_grad(), dw), kFloatTolerance);
  if (n.has_bias()) {
    EXPECT_LT(relative_error(n.norm->bias_grad(), db), kFloatTolerance);
  }
}

TEST_P(Norms, BackwardMatchesCentralDifferencesOfTheForward) {
  BuiltNorm n(GetParam());
  n.norm->forward(n.x);
  n.norm->backward(n.x, n.dy);
  const Matrix dx = n.norm->input_grad(), dw = n.norm->weight_grad();
  const Matrix db = n.has_bias() ? Matrix(n.norm->bias_grad()) : Matrix(0, kWidth);
  constexpr float kStep = 1e-2f;
  constexpr double kTolerance = 2e-3;
  const auto loss = [&] { return n.loss(); };
  for (long i = 0; i < n.x.size(); ++i)
    EXPECT_NEAR(dx.data()[i], central_difference(n.x, i, kStep, loss), kTolerance) << "dx " << i;
  for (long i = 0; i < kWidth; ++i) {
    const double numeric = central_difference(n.norm->weight(), i, kStep, loss);
    EXPECT_NEAR(dw.data()[i], numeric, kTolerance * (1 + std::abs(numeric))) << "dw " << i;
  }
  for (long i = 0; i < db.size(); ++i) {
    const double numeric = central_difference(n.norm->bias(), i, kStep, loss);
    EXPECT_NEAR(db.data()[i], numeric, kTolerance * (1 + std::abs(numeric))) << "db " << i;
  }
}

TEST_P(Norms, ReferenceBackwardMatchesCentralDifferencesOfTheReferenceForward) {
  const NormKind kind = GetParam();
  const bool layer = kind == NormKind::layer;
  MatrixD x = (normal_matrix(kRows, kWidth, 21).array() + kOffset).cast<double>();
  MatrixD w = normal_matrix(1, kWidth, 23).cast<double>();
  MatrixD b = layer ? MatrixD(normal_matrix(1, kWidth, 24).cast<double>()) : MatrixD(0, kWidth);
  const MatrixD dy = normal_matrix(kRows, kWidth, 22).cast<double>();
  MatrixD dx(kRows, kWidth), dw(1, kWidth), db(b.rows(), kWidth), y(kRows, kWidth);
  exact_norm_backward(kind, x, w, dy, kEps, dx, dw, db);
  auto loss = [&] {
    exact_norm(kind, x, w, b, kEps, y);
    return y.cwiseProduct(dy).sum();
  };
  constexpr double kStep = 1e-6, kTolerance = 1e-7;
  const std::pair<MatrixD*, const MatrixD*> inputs[] = {{&x, &dx}, {&w, &dw}, {&b, &db}};
  for (const auto& [input, grad] : inputs)
    for (long i = 0; i < input->size(); ++i) {
      const double numeric = central_difference(*input, i, kStep, loss);
      EXPECT_NEAR(grad->data()[i], numeric, kTolerance * (1 + std::abs(numeric))) << i;
    }
}

INSTANTIATE_TEST_SUITE_P(Kinds, Norms, ::testing::Values(NormKind::rms, NormKind::layer),
                         kind_name);
