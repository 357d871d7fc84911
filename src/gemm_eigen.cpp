// gemm: Eigen's single-threaded GEMM, the backend that needs nothing beyond Eigen itself. Its
// product takes no packed operand, so a plan is the plain call (bf16 widened to fp32 first).
#include <string>

#include "tp_mlp/gemm.hpp"
#include "tp_mlp/library_scope.hpp"
#include "tp_mlp/planned_gemm.hpp"
#include "tp_mlp/widened_gemm.hpp"

#define TP_MLP_STR2(x) #x
#define TP_MLP_STR(x) TP_MLP_STR2(x)

namespace tp_mlp {

void gemm(const ConstMatrixRef& a, const ConstMatrixRef& b, MatrixRef c, Op op_a, Op op_b) {
  // Eigen's product reads a .transpose() in place; each combination is its own expression. An
  // empty product is Eigen's too: nothing to write, or zeros.
  const bool ta = op_a == Op::transpose, tb = op_b == Op::transpose;
  const LibraryScope library;  // Eigen's packing buffers are on the heap for large products
  if (!ta && !tb) c.noalias() = a * b;
  if (!ta && tb) c.noalias() = a * b.transpose();
  if (ta && !tb) c.noalias() = a.transpose() * b;
  if (ta && tb) c.noalias() = a.transpose() * b.transpose();
}

// Fixed when this file was compiled (-march): Eigen's kernels are the compiler's vectors.
VectorIsa gemm_vector_isa() {
#if defined(EIGEN_VECTORIZE_AVX512)
  return VectorIsa::avx512;
#elif defined(EIGEN_VECTORIZE_AVX2) && defined(EIGEN_VECTORIZE_FMA)
  return VectorIsa::avx2;
#else
  return VectorIsa::sse;
#endif
}

// Built with EIGEN_DONT_PARALLELIZE: Eigen's GEMM never starts a thread.
void gemm_use_one_thread() {}

const char* gemm_backend() {
  return "Eigen " TP_MLP_STR(EIGEN_WORLD_VERSION) "." TP_MLP_STR(
      EIGEN_MAJOR_VERSION) "." TP_MLP_STR(EIGEN_MINOR_VERSION);
}

template <>
struct PlannedGemm<float>::Plan {
  Op op_a, op_b;
};

template <>
PlannedGemm<float>::PlannedGemm(Workspace& ws, const ConstRef<float>&, const ConstRef<float>&,
                                const MatrixRef&, Op op_a, Op op_b, Operand)
    : plan_(&ws.make<Plan>(Plan{op_a, op_b})) {}

template <>
void PlannedGemm<float>::prepare(const ConstRef<float>&) {}

template <>
void PlannedGemm<float>::run(const ConstRef<float>& a, const ConstRef<float>& b, MatrixRef c) {
  gemm(a, b, c, plan_->op_a, plan_->op_b);
}

template <>
const char* PlannedGemm<float>::implementation() const {
  return "Eigen's GEMM";
}

// Eigen's own bfloat16 product rounds every sum to bf16; widening to float is exact and
// accumulates in fp32, as the model needs.
template <>
struct PlannedGemm<bfloat16>::Plan {
  WidenedGemm widened;
};

template <>
PlannedGemm<bfloat16>::PlannedGemm(Workspace& ws, const ConstRef<bfloat16>& a,
                                   const ConstRef<bfloat16>& b, const MatrixRef&, Op op_a, Op op_b,
                                   Operand b_kind)
    : plan_(&ws.make<Plan>(Plan{WidenedGemm(ws, a, b, op_a, op_b, b_kind)})) {}

template <>
void PlannedGemm<bfloat16>::prepare(const ConstRef<bfloat16>& b) {
  plan_->widened.prepare(b);
}

template <>
void PlannedGemm<bfloat16>::run(const ConstRef<bfloat16>& a, const ConstRef<bfloat16>& b,
                                MatrixRef c) {
  plan_->widened.run(a, b, c);
}

template <>
const char* PlannedGemm<bfloat16>::implementation() const {
  return "widened to fp32, Eigen's GEMM";
}

const char* bf16_gemm_implementation() { return "widened to fp32, Eigen's GEMM"; }

bool packs_weights_once(DType) { return false; }  // Eigen packs both operands in every product

}  // namespace tp_mlp
