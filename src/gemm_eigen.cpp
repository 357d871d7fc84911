// gemm: Eigen's single-threaded GEMM, the backend that needs nothing beyond Eigen itself.
#include "tp_mlp/gemm.hpp"

#define TP_MLP_STR2(x) #x
#define TP_MLP_STR(x) TP_MLP_STR2(x)

namespace tp_mlp {

void gemm(const ConstMatrixRef& a, const ConstMatrixRef& b, MatrixRef c, Op op_a, Op op_b) {
  // Eigen's product reads a .transpose() in place; each combination is its own expression.
  const bool ta = op_a == Op::transpose, tb = op_b == Op::transpose;
  if (!ta && !tb) c.noalias() = a * b;
  if (!ta && tb) c.noalias() = a * b.transpose();
  if (ta && !tb) c.noalias() = a.transpose() * b;
  if (ta && tb) c.noalias() = a.transpose() * b.transpose();
}

// Built with EIGEN_DONT_PARALLELIZE: Eigen's GEMM never starts a thread.
void gemm_use_one_thread() {}

const char* gemm_backend() {
  return "Eigen " TP_MLP_STR(EIGEN_WORLD_VERSION) "." TP_MLP_STR(
      EIGEN_MAJOR_VERSION) "." TP_MLP_STR(EIGEN_MINOR_VERSION);
}

}  // namespace tp_mlp
