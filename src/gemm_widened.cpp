// gemm_widened: the portable bf16 product: widen to float, then the fp32 gemm (widened_gemm.hpp).
#include "tp_mlp/widened_gemm.hpp"

namespace tp_mlp {

WidenedGemm::WidenedGemm(Workspace& ws, const ConstRef<bfloat16>& a, const ConstRef<bfloat16>& b,
                         Op op_a, Op op_b, Operand b_kind)
    : op_a_(op_a),
      op_b_(op_b),
      weights_(b_kind == Operand::weights),
      a_(ws.matrix<float>(a.rows(), a.cols())),
      b_(ws.matrix<float>(b.rows(), b.cols())) {}

void WidenedGemm::prepare(const ConstRef<bfloat16>& b) {
  if (weights_) to_float(b, b_);  // an operand that varies is widened at every run
}

void WidenedGemm::run(const ConstRef<bfloat16>& a, const ConstRef<bfloat16>& b, MatrixRef c) {
  to_float(a, a_);
  if (!weights_) to_float(b, b_);
  gemm(a_, b_, c, op_a_, op_b_);
}

}  // namespace tp_mlp
