// gemm: oneDNN's sgemm on one OpenMP thread, since the MPI ranks are the parallelism.
#include "tp_mlp/gemm.hpp"

#include <stdexcept>
#include <string>

#include <dnnl.h>
#include <omp.h>

namespace tp_mlp {

void gemm(ConstMatrixRef a, ConstMatrixRef b, MatrixRef c) {
  // Debian's oneDNN is built with OpenMP and would start a thread per core in every rank.
  // The limit is an ICV of the calling thread; only the main thread calls gemm.
  static const bool single_threaded = (omp_set_num_threads(1), true);
  (void)single_threaded;
  eigen_assert(a.rows() == c.rows() && a.cols() == b.rows() && b.cols() == c.cols());
  // dnnl_sgemm is row-major, so the leading dimensions are the row strides.
  const dnnl_status_t status =
      dnnl_sgemm('N', 'N', c.rows(), c.cols(), a.cols(), 1.0f, a.data(), a.outerStride(),
                 b.data(), b.outerStride(), 0.0f, c.data(), c.outerStride());
  if (status != dnnl_success) throw std::runtime_error("dnnl_sgemm failed: status " + std::to_string(status));
}

const char* gemm_backend() {
  static const std::string name = [] {
    const dnnl_version_t* v = dnnl_version();
    return "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
           std::to_string(v->patch) + " (dnnl_sgemm)";
  }();
  return name.c_str();
}

}  // namespace tp_mlp
