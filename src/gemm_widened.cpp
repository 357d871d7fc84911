// gemm_widened: the portable bf16 product: widen to float, then the fp32 gemm (see gemm.hpp).
#include "tp_mlp/gemm.hpp"

#include <string>

namespace tp_mlp {

WidenedBf16Gemm::WidenedBf16Gemm(const ConstMatrixBRef& a, const ConstMatrixBRef& b, Op op_a,
                                 Op op_b, Bf16Gemm::B b_kind)
    : op_a_(op_a),
      op_b_(op_b),
      weights_(b_kind == Bf16Gemm::B::weights),
      a_(a.rows(), a.cols()),
      b_(b.rows(), b.cols()) {
  if (weights_) prepare(b);
}

void WidenedBf16Gemm::prepare(const ConstMatrixBRef& b) {
  if (weights_) to_float(b, b_);  // an operand that varies is widened at every run
}

void WidenedBf16Gemm::run(const ConstMatrixBRef& a, const ConstMatrixBRef& b, MatrixRef c) {
  to_float(a, a_);
  if (!weights_) to_float(b, b_);
  gemm(a_, b_, c, op_a_, op_b_);
}

const char* bf16_gemm_implementation() {
  static const std::string name = [] {
    constexpr long kProbe = 64;  // any shape the backend plans like the model's
    const MatrixB a = MatrixB::Zero(kProbe, kProbe), b = MatrixB::Zero(kProbe, kProbe);
    Matrix c(kProbe, kProbe);
    return std::string(
        Bf16Gemm(a, b, c, Op::none, Op::none, Bf16Gemm::B::weights).implementation());
  }();
  return name.c_str();
}

double WidenedBf16Gemm::bytes() const { return double(a_.size() + b_.size()) * sizeof(float); }

double WidenedBf16Gemm::bytes_for(long rows_a, long cols_a, long rows_b, long cols_b) {
  return double(rows_a * cols_a + rows_b * cols_b) * sizeof(float);
}

}  // namespace tp_mlp
