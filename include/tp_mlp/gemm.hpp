// gemm: the one matrix product the model needs, c = a · b, behind an interface small
// enough that the backend can change without touching the schemes.
#pragma once

#include "tp_mlp/matrix.hpp"

namespace tp_mlp {

enum class Op { none, transpose };

// c = op(a) · op(b) for row-major operands, op(a) [m, k], op(b) [k, n], c [m, n]; c must
// not alias a or b. A transposed operand is read in place, never copied.
void gemm(const ConstMatrixRef& a, const ConstMatrixRef& b, MatrixRef c, Op op_a = Op::none,
          Op op_b = Op::none);

const char* gemm_backend();

// Called once at start-up, on the thread that will call gemm(): the MPI ranks are the
// parallelism, so the backend must not start threads of its own.
void gemm_use_one_thread();  // for the report: "Eigen 3.4.0", "oneDNN 2.6.3 (dnnl_sgemm)"

}  // namespace tp_mlp
