// column_parallel_linear: whole columns from the whole input (see column_parallel_linear.hpp).
#include "tp_mlp/column_parallel_linear.hpp"

#include <algorithm>
#include <stdexcept>

namespace tp_mlp {
Projections::Projections(std::initializer_list<long> each) {
  if (each.size() > std::size_t(kMax)) throw std::logic_error("too many fused projections");
  for (long w : each) widths[std::size_t(count++)] = w;
}

Projections Projections::same(long width, int count) {
  Projections p{};
  for (int i = 0; i < count; ++i) p.widths[std::size_t(p.count++)] = width;
  return p;
}

long Projections::total() const {
  long sum = 0;
  for (int i = 0; i < count; ++i) sum += widths[std::size_t(i)];
  return sum;
}

template <typename T>
ColumnParallelLinear<T>::ColumnParallelLinear(Workspace& ws, TpComm& tp, long in_features,
                                              const Projections& widths, bool bias,
                                              const Chunking& chunking, bool backward,
                                              int grad_blocks)
    : tp_(tp),
      chunking_(chunking),
      weight_(ws.matrix<T>(in_features, widths.total())),
      bias_(ws.matrix<float>(bias ? 1 : 0, widths.total())),
      output_(ws.matrix<float>(chunking.rows, widths.total())),
      input_grad_(ws.matrix<float>(backward ? chunking.rows : 0, in_features)),
      weight_grad_(ws.matrix<float>(backward ? in_features : 0, widths.total())),
      bias_grad_(ws.matrix<float>(backward && bias ? 1 : 0, widths.total())) {
  long first = 0;
  for (int i = 0; i < widths.count; ++i) {
    projections_[std::size_t(i)] = {first, widths.widths[std::size_t(i)]};
    first += widths.widths[std::size_t(i)];
  }
  const long out = weight_.cols();
  // What the GEMMs read: x, and the output's gradient, [rows, ·] row-major; a plan needs their
  // layout, not their data.
  const Tensor<T> x(Workspace::nowhere<T>(), chunking.rows, in_features);
  const Tensor<T> d_out(Workspace::nowhere<T>(), chunking.rows, out);
  std::size_t h = 0;
  for (const long rows : chunking.heights()) {
    forward_[h].rows = rows;
    forward_[h++].gemm.emplace(ws, x.topRows(rows), weight_, output_.topRows(rows), Op::none,
                               Op::none, Operand::weights);
  }
  if (!backward) return;
  input_grad_gemm_.emplace(ws, d_out, weight_, input_grad_, Op::none, Op::transpose,
                           Operand::varies);
  // No block of no columns: a rank may hold fewer columns than there are blocks.
  grad_blocks_ = int(std::clamp<long>(out, 1, std::min(grad_blocks, kMaxGradBlocks)));
  for (int j = 0; j < grad_blocks_; ++j) {
    const Block cols = block_of(out, grad_blocks_, j);
    weight_grad_gemms_[std::size_t(j)].emplace(ws, x, d_out.middleCols(cols.first, cols.count),
                                               weight_grad_.middleCols(cols.first, cols.count),
                                               Op::transpose, Op::none, Operand::varies);
  }
}

template <typename T>
void ColumnParallelLinear<T>::prepare() {
  for (ForwardPlan& plan : forward_)
    if (plan.gemm) plan.gemm->prepare(weight_);
}

template <typename T>
void ColumnParallelLinear<T>::forward(const ConstRef<T>& x, Block rows) {
  for (ForwardPlan& plan : forward_)
    if (plan.gemm && plan.rows == rows.count) {
      auto out = output_.middleRows(rows.first, rows.count);
      plan.gemm->run(x.middleRows(rows.first, rows.count), weight_, out);
      if (has_bias()) out.rowwise() += bias_.row(0);
      return;
    }
  throw std::logic_error("no GEMM planned for a block of this many rows");
}

template <typename T>
MatrixRef ColumnParallelLinear<T>::backward_input(const ConstRef<T>& d_out) {
  input_grad_gemm_->run(d_out, weight_, input_grad_);  // d_in = d_out·Wᵀ
  return input_grad_;
}

template <typename T>
void ColumnParallelLinear<T>::backward_weights(const ConstRef<T>& x, const ConstRef<T>& d_out_t,
                                               const ConstMatrixRef& d_out) {
  for (int j = 0; j < grad_blocks_; ++j) {  // dW = xᵀ·d_out, a block of columns at a time
    const Block cols = block_of(weight_grad_.cols(), grad_blocks_, j);
    weight_grad_gemms_[std::size_t(j)]->run(x, d_out_t.middleCols(cols.first, cols.count),
                                            weight_grad_.middleCols(cols.first, cols.count));
    tp_.progress();  // whatever is in flight moves on
  }
  if (has_bias()) bias_grad_ = d_out.colwise().sum();
}

template class ColumnParallelLinear<float>;
template class ColumnParallelLinear<bfloat16>;

}  // namespace tp_mlp
