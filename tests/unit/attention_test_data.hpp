// What the attention block's tests share: deterministic inputs, the distance of a float result
// from the exact one, and central differences of a loss, for the backward passes.
#pragma once

#include <cstdint>

#include "tp_mlp/init.hpp"
#include "tp_mlp/matrix.hpp"

namespace tp_mlp {

// A [rows, cols] matrix of N(0, 1) numbers, a different one for each stream.
inline Matrix normal_matrix(long rows, long cols, std::uint64_t stream) {
  constexpr std::uint64_t kSeed = 2024;
  Matrix m(rows, cols);
  fill_block(m, {stream, MasterTensor::Distribution::standard_normal, rows, cols}, kSeed, 0, 0);
  return m;
}

// max |got − exact| / max |exact|: the error relative to the tensor's scale.
inline double relative_error(const ConstMatrixRef& got, const ConstMatrixDRef& exact) {
  return (got.cast<double>() - exact).cwiseAbs().maxCoeff() / exact.cwiseAbs().maxCoeff();
}

// dL/dx_i by central differences, x_i moved by ±step and put back; the loss is evaluated in
// double (L = Σ output ⊙ d_output), so that its difference is not all rounding.
template <typename M, typename Loss>
double central_difference(M& x, long i, typename M::Scalar step, Loss loss) {
  auto& value = x.data()[i];
  const auto saved = value;
  value = saved + step;
  const double plus = loss(), up = double(value);
  value = saved - step;
  const double minus = loss(), down = double(value);
  value = saved;
  return (plus - minus) / (up - down);  // the step as rounded
}

}  // namespace tp_mlp
