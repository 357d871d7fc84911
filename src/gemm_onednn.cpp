// gemm: oneDNN's sgemm on one OpenMP thread, since the MPI ranks are the parallelism.
#include "tp_mlp/gemm.hpp"

#include <stdexcept>
#include <string>

#include <dnnl.h>
#include <omp.h>

namespace tp_mlp {

void gemm(const ConstMatrixRef& a, const ConstMatrixRef& b, MatrixRef c, Op op_a, Op op_b) {
  const bool ta = op_a == Op::transpose, tb = op_b == Op::transpose;
  const long k = ta ? a.rows() : a.cols();
  eigen_assert((ta ? a.cols() : a.rows()) == c.rows() && (tb ? b.rows() : b.cols()) == c.cols() &&
               (tb ? b.cols() : b.rows()) == k);
  // The row-major API reads transposes in place; leading dimensions are the row strides.
  const dnnl_status_t status =
      dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', c.rows(), c.cols(), k, 1.0f, a.data(),
                 a.outerStride(), b.data(), b.outerStride(), 0.0f, c.data(), c.outerStride());
  if (status != dnnl_success)
    throw std::runtime_error("dnnl_sgemm failed with status " + std::to_string(int(status)));
}

// Debian's oneDNN is built with OpenMP and would start a thread per core in every rank. The
// limit belongs to the calling thread, which is why it is set on the one that calls gemm().
void gemm_use_one_thread() { omp_set_num_threads(1); }

const char* gemm_backend() {
  static const std::string name = [] {
    const dnnl_version_t* v = dnnl_version();
    return "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
           std::to_string(v->patch) + " (dnnl_sgemm)";
  }();
  return name.c_str();
}

}  // namespace tp_mlp
