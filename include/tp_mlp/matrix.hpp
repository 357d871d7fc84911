// tensor: the one matrix type every part of the program shares.
//
// Row-major, like PyTorch and NumPy: a [tokens, hidden] activation is `tokens` rows of
// `hidden` contiguous floats, so it can be all-reduced as one buffer and saved as a
// C-order .npy file without a copy.
#pragma once

#include <Eigen/Core>

namespace tp_mlp {

template <typename Scalar>
using RowMajor = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

using Matrix = RowMajor<float>;    // the model's tensors: weights, activations
using MatrixD = RowMajor<double>;  // the reference's tensors

// A view of any row-major block (a column slice of X, say) that GEMM backends can read.
using ConstMatrixRef = Eigen::Ref<const Matrix, 0, Eigen::OuterStride<>>;
using MatrixRef = Eigen::Ref<Matrix, 0, Eigen::OuterStride<>>;
using MatrixDRef = Eigen::Ref<MatrixD, 0, Eigen::OuterStride<>>;

}  // namespace tp_mlp
