// matrix: the matrix types every part of the program shares.
//
// Row-major, like PyTorch and NumPy: a [tokens, hidden] activation is `tokens` rows of
// `hidden` contiguous floats, so it can be all-reduced as one buffer and saved as a
// C-order .npy file without a copy.
#pragma once

#include <Eigen/Core>

namespace tp_mlp {

template <typename Scalar>
using RowMajor = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

using Matrix = RowMajor<float>;    // a matrix that owns its floats (tests, small temporaries)
using MatrixD = RowMajor<double>;  // the reference's

// A matrix whose memory belongs to a Workspace (workspace.hpp): the model's tensors.
template <typename Scalar>
using Tensor = Eigen::Map<RowMajor<Scalar>>;

// A view of any row-major block (a column slice of X, say) that GEMM backends can read.
template <typename Scalar>
using ConstRef = Eigen::Ref<const RowMajor<Scalar>, 0, Eigen::OuterStride<>>;
template <typename Scalar>
using Ref = Eigen::Ref<RowMajor<Scalar>, 0, Eigen::OuterStride<>>;
using ConstMatrixRef = ConstRef<float>;
using MatrixRef = Ref<float>;
using ConstMatrixDRef = ConstRef<double>;
using MatrixDRef = Ref<double>;

}  // namespace tp_mlp
