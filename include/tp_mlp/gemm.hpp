// gemm: the matrix product the model is made of, c = op(a)·op(b) in fp32, as one call to the
// backend chosen at configure time (oneDNN's dnnl_sgemm, or Eigen's product). Products that pay
// for a plan (bf16, and fp32 products of few rows with constant weights) are planned_gemm.hpp's.
#pragma once

#include "tp_mlp/machine.hpp"
#include "tp_mlp/matrix.hpp"

namespace tp_mlp {

enum class Op { none, transpose };

// c = op(a) · op(b) for row-major operands, op(a) [m, k], op(b) [k, n], c [m, n]; c must
// not alias a or b. A transposed operand is read in place, never copied. Every shape runs,
// empty ones included: with m or n zero there is nothing to write, with k zero c is zero.
void gemm(const ConstMatrixRef& a, const ConstMatrixRef& b, MatrixRef c, Op op_a = Op::none,
          Op op_b = Op::none);

// For the report: "Eigen 3.4.0", "oneDNN 2.6.3 (dnnl_sgemm)".
const char* gemm_backend();

// The widest vectors the backend's fp32 kernels use on this CPU: oneDNN's own choice at run
// time (which ONEDNN_MAX_CPU_ISA may hold back), or what Eigen was compiled for. The FMA peak,
// and every bound against it, is measured with these: what the products could reach here.
VectorIsa gemm_vector_isa();

// Called once at start-up, on the thread that will call gemm(): the MPI ranks are the
// parallelism, so the backend must not start threads of its own.
void gemm_use_one_thread();

}  // namespace tp_mlp
