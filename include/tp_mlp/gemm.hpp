// gemm: the one matrix product the model needs, c = a · b, behind an interface small
// enough that the backend can change without touching the schemes.
#pragma once

#include "tp_mlp/tensor.hpp"

namespace tp_mlp {

// c = a · b for row-major a [m, k], b [k, n], c [m, n]; c must not alias a or b.
void gemm(ConstMatrixRef a, ConstMatrixRef b, MatrixRef c);

const char* gemm_backend();  // for the report, e.g. "Eigen 3.4.0"

}  // namespace tp_mlp
