// row_parallel_linear: partial sums of the whole output (see row_parallel_linear.hpp).
#include "tp_mlp/row_parallel_linear.hpp"

#include <stdexcept>

namespace tp_mlp {

template <typename T>
RowParallelLinear<T>::RowParallelLinear(Workspace& ws, long in_here, long input_stride,
                                        long out_features, const LinearOptions& options)
    : weight_(ws.matrix<T>(in_here, out_features)),
      bias_(ws.matrix<float>(options.bias ? 1 : 0, out_features)),
      partial_(ws.matrix<float>(options.partials_to_caller ? 0 : options.rows.rows, out_features)),
      input_grad_(ws.matrix<float>(options.backward ? options.rows.rows : 0, in_here)),
      weight_grad_(ws.matrix<float>(options.backward ? in_here : 0, out_features)),
      bias_grad_(ws.matrix<float>(options.backward && options.bias ? 1 : 0, out_features)) {
  // What the GEMMs read and write: x [rows, in here] within rows of `input_stride`, dy and the
  // output [rows, out]; a plan needs their layout, not their data.
  using Strided = Eigen::Map<const RowMajor<T>, 0, Eigen::OuterStride<>>;
  const long rows = options.rows.rows;
  const Strided x(Workspace::nowhere<T>(), rows, in_here, Eigen::OuterStride<>(input_stride));
  const Tensor<T> dy(Workspace::nowhere<T>(), rows, out_features);
  Tensor<float> out(Workspace::nowhere<float>(), rows, out_features);
  std::size_t h = 0;
  for (const long height : options.rows.heights()) {
    forward_[h].rows = height;
    forward_[h++].gemm.emplace(ws, x.topRows(height), weight_, out.topRows(height), Op::none,
                               Op::none, Operand::weights);
  }
  if (!options.backward) return;
  weight_grad_gemm_.emplace(ws, x, dy, weight_grad_, Op::transpose, Op::none, Operand::varies);
  input_grad_gemm_.emplace(ws, dy, weight_, input_grad_, Op::none, Op::transpose, Operand::varies);
}

template <typename T>
void RowParallelLinear<T>::prepare() {
  for (ForwardPlan& plan : forward_)
    if (plan.gemm) plan.gemm->prepare(weight_);
}

template <typename T>
PlannedGemm<T>& RowParallelLinear<T>::plan_for(long rows) {
  for (ForwardPlan& plan : forward_)
    if (plan.gemm && plan.rows == rows) return *plan.gemm;
  throw std::logic_error("no GEMM planned for a block of this many rows");
}

template <typename T>
void RowParallelLinear<T>::forward(const ConstRef<T>& x, Block rows) {
  forward(x, rows, partial_.middleRows(rows.first, rows.count));
}

template <typename T>
void RowParallelLinear<T>::forward(const ConstRef<T>& x, Block rows, MatrixRef into) {
  plan_for(rows.count).run(x.middleRows(rows.first, rows.count), weight_, into);
}

template <typename T>
void RowParallelLinear<T>::add_bias(MatrixRef summed) const {
  if (has_bias()) summed.rowwise() += bias_.row(0);
}

template <typename T>
void RowParallelLinear<T>::backward(const ConstRef<T>& x, const ConstRef<T>& dy) {
  if (has_bias()) {
    bias_grad_.setZero();
    for (long r = 0; r < dy.rows(); ++r) bias_grad_ += dy.row(r).template cast<float>();
  }
  weight_grad_gemm_->run(x, dy, weight_grad_);      // dW = xᵀ·dy   [in here, out]
  input_grad_gemm_->run(dy, weight_, input_grad_);  // d_in = dy·Wᵀ   [rows, in here]
}

template class RowParallelLinear<float>;
template class RowParallelLinear<bfloat16>;

}  // namespace tp_mlp
