// widened_gemm: the portable bf16 product, for backends and CPUs without a native one: both
// operands widened to float (exactly), then the fp32 gemm(), into buffers from the workspace.
// Constant weights are widened once, at prepare().
#pragma once

#include "tp_mlp/bf16.hpp"
#include "tp_mlp/gemm.hpp"
#include "tp_mlp/planned_gemm.hpp"
#include "tp_mlp/workspace.hpp"

namespace tp_mlp {

class WidenedGemm {
 public:
  WidenedGemm(Workspace& ws, const ConstRef<bfloat16>& a, const ConstRef<bfloat16>& b, Op op_a,
              Op op_b, Operand b_kind);
  void prepare(const ConstRef<bfloat16>& b);
  void run(const ConstRef<bfloat16>& a, const ConstRef<bfloat16>& b, MatrixRef c);

 private:
  Op op_a_, op_b_;
  bool weights_;
  Tensor<float> a_, b_;  // float copies of the operands, shaped as stored
};

}  // namespace tp_mlp
