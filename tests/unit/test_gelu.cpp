// GeLU against values of x·Φ(x) computed independently (Python: x * (1 + erf(x/√2)) / 2).
#include <gtest/gtest.h>

#include "tp_mlp/mlp.hpp"

using namespace tp_mlp;

TEST(Gelu, MatchesExactErfForm) {
  const std::vector<std::pair<float, double>> known = {
      {-3.0f, -0.0040496941},  {-1.0f, -0.15865525393}, {-0.5f, -0.15426876936},
      {0.0f, 0.0},             {0.5f, 0.34573123064},   {1.0f, 0.84134474607},
      {2.0f, 1.9544997361},    {3.0f, 2.9959503059}};
  Matrix h(1, Eigen::Index(known.size()));
  for (std::size_t i = 0; i < known.size(); ++i) h(0, Eigen::Index(i)) = known[i].first;
  gelu_in_place(h);
  for (std::size_t i = 0; i < known.size(); ++i)
    EXPECT_NEAR(h(0, Eigen::Index(i)), known[i].second, 1e-6) << "x = " << known[i].first;
}

TEST(Gelu, IsNotTheTanhApproximation) {
  // At x = 1 the tanh form gives 0.8411920; the erf form 0.8413447. They differ by 1.5e-4.
  Matrix h = Matrix::Constant(1, 1, 1.0f);
  gelu_in_place(h);
  EXPECT_NEAR(h(0, 0), 0.84134474607, 1e-6);
  EXPECT_GT(std::abs(h(0, 0) - 0.8411920), 1e-4);
}

TEST(Gelu, WorksOnAColumnSliceWithoutTouchingTheRest) {
  Matrix h = Matrix::Constant(3, 4, 1.0f);
  gelu_in_place(h.middleCols(1, 2));
  EXPECT_EQ(h(0, 0), 1.0f);
  EXPECT_EQ(h(2, 3), 1.0f);
  EXPECT_NEAR(h(1, 1), 0.84134474607, 1e-6);
  EXPECT_NEAR(h(1, 2), 0.84134474607, 1e-6);
}
