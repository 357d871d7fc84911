// planned_gemm: one call site's product c [m, n] (fp32) = op(a)·op(b), for a and b of the
// model's element type T (float, or bfloat16 whose products accumulate in fp32), planned once
// for the shapes, strides and transposes it will see, its memory taken from the workspace.
//
// Planning is where the backend's fast paths live: oneDNN's matmul primitive with constant
// weights reordered once into the layout it prefers (for bf16, and for fp32 products of few
// rows where the primitive's kernel is the brgemm one), its scratchpad and reordered weights
// sized by the primitive itself; elsewhere the plain gemm() call, or for bf16 without a native
// product the operands widened to fp32 first. Which path runs is chosen at run time from what
// the CPU offers, never from a measurement: the same command on the same machine always takes
// the same path, and so computes the same bits.
#pragma once

#include "tp_mlp/bf16.hpp"
#include "tp_mlp/config.hpp"
#include "tp_mlp/gemm.hpp"
#include "tp_mlp/workspace.hpp"

namespace tp_mlp {

// b is the model's weights, constant between calls to prepare() (the backend may keep its own
// copy in the layout it prefers), or an operand that varies from call to call.
enum class Operand { weights, varies };

template <typename T>
class PlannedGemm {
 public:
  // Planned for matrices laid out like these (their data may be null: a plan needs the layout,
  // not the values). Weights are read by prepare(), which the owner calls once they are filled.
  PlannedGemm(Workspace& ws, const ConstRef<T>& a, const ConstRef<T>& b, const MatrixRef& c,
              Op op_a, Op op_b, Operand b_kind);
  // (Re)reads constant weights, after they have changed.
  void prepare(const ConstRef<T>& b);
  // The product for matrices laid out as planned; refuses others rather than misread them.
  void run(const ConstRef<T>& a, const ConstRef<T>& b, MatrixRef c);
  // "oneDNN matmul (brg:avx512_core_bf16)", "dnnl_sgemm", "widened to fp32, Eigen's GEMM", ...
  const char* implementation() const;

  struct Plan;  // the backend's, in the workspace

 private:
  Plan* plan_ = nullptr;
};

// Each backend defines these (gemm_onednn.cpp or gemm_eigen.cpp): declared here, before any
// use, as C++ asks of explicit specialisations.
template <>
PlannedGemm<float>::PlannedGemm(Workspace& ws, const ConstRef<float>& a, const ConstRef<float>& b,
                                const MatrixRef& c, Op op_a, Op op_b, Operand b_kind);
template <>
void PlannedGemm<float>::prepare(const ConstRef<float>& b);
template <>
void PlannedGemm<float>::run(const ConstRef<float>& a, const ConstRef<float>& b, MatrixRef c);
template <>
const char* PlannedGemm<float>::implementation() const;
template <>
PlannedGemm<bfloat16>::PlannedGemm(Workspace& ws, const ConstRef<bfloat16>& a,
                                   const ConstRef<bfloat16>& b, const MatrixRef& c, Op op_a,
                                   Op op_b, Operand b_kind);
template <>
void PlannedGemm<bfloat16>::prepare(const ConstRef<bfloat16>& b);
template <>
void PlannedGemm<bfloat16>::run(const ConstRef<bfloat16>& a, const ConstRef<bfloat16>& b,
                                MatrixRef c);
template <>
const char* PlannedGemm<bfloat16>::implementation() const;

// How a bf16 product runs on this machine, found by planning one: for the banner.
const char* bf16_gemm_implementation();

// Whether a product of few rows with constant weights of element type `dtype` reuses them
// packed once (oneDNN's brgemm): then cutting a pass's rows into more calls costs little.
// Elsewhere (dnnl_sgemm, AVX2's gemm:jit, Eigen) every call packs the weights again, and fewer
// rows per call run slower. Found by planning one, at run time.
bool packs_weights_once(DType dtype);

}  // namespace tp_mlp
