// norm: RMSNorm and LayerNorm, row by row with Eigen's vectorised reductions (see norm.hpp).
#include "tp_mlp/norm.hpp"

#include <cmath>

namespace tp_mlp {

Norm::Norm(Workspace& ws, NormKind kind, long rows, long width, float eps, bool backward)
    : kind_(kind),
      eps_(eps),
      weight_(ws.matrix<float>(1, width)),
      bias_(ws.matrix<float>(kind == NormKind::layer ? 1 : 0, width)),
      output_(ws.matrix<float>(rows, width)),
      mean_(ws.matrix<float>(kind == NormKind::layer ? rows : 0, 1)),
      inverse_rms_(ws.matrix<float>(rows, 1)),
      input_grad_(ws.matrix<float>(backward ? rows : 0, width)),
      weight_grad_(ws.matrix<float>(backward ? 1 : 0, width)),
      bias_grad_(ws.matrix<float>(backward && kind == NormKind::layer ? 1 : 0, width)) {}

void Norm::forward(const ConstMatrixRef& x) {
  const float width = float(x.cols());
  for (long i = 0; i < x.rows(); ++i) {
    const float mean = centred() ? x.row(i).mean() : 0.0f;
    const auto centred_row = x.row(i).array() - mean;
    const float r = 1.0f / std::sqrt(centred_row.square().sum() / width + eps_);
    if (centred()) mean_(i, 0) = mean;
    inverse_rms_(i, 0) = r;
    output_.row(i).array() = centred_row * r * weight_.row(0).array();
    if (centred()) output_.row(i) += bias_.row(0);
  }
}

void Norm::backward(const ConstMatrixRef& x, const ConstMatrixRef& dy) {
  const float width = float(x.cols());
  weight_grad_.setZero();
  for (long i = 0; i < x.rows(); ++i) {
    const float r = inverse_rms_(i, 0);
    const auto x_hat = (x.row(i).array() - (centred() ? mean_(i, 0) : 0.0f)) * r;
    const auto g = dy.row(i).array() * weight_.row(0).array();
    const float g_mean = centred() ? g.sum() / width : 0.0f;
    const float gx_mean = (g * x_hat).sum() / width;
    input_grad_.row(i).array() = r * (g - g_mean - x_hat * gx_mean);
    weight_grad_.row(0).array() += dy.row(i).array() * x_hat;
  }
  if (centred()) bias_grad_ = dy.colwise().sum();
}

}  // namespace tp_mlp
