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
                                              const Projections& widths,
                                              const LinearOptions& options)
    : tp_(tp),
      options_(options),
      weight_(ws.matrix<T>(in_features, widths.total())),
      bias_(ws.matrix<float>(options.bias ? 1 : 0, widths.total())),
      output_(ws.matrix<float>(options.rows.rows, widths.total())),
      input_grad_(ws.matrix<float>(
          options.backward && !options.partials_to_caller ? options.rows.rows : 0, in_features)),
      weight_grad_(ws.matrix<float>(options.backward ? in_features : 0, widths.total())),
      bias_grad_(ws.matrix<float>(options.backward && options.bias ? 1 : 0, widths.total())) {
  long first = 0;
  for (int i = 0; i < widths.count; ++i) {
    projections_[std::size_t(i)] = {first, widths.widths[std::size_t(i)]};
    first += widths.widths[std::size_t(i)];
  }
  const long rows = options.rows.rows, out = weight_.cols();
  // What the GEMMs read and write, row-major: x [rows, in], the output's gradient [rows, out],
  // the input's [rows, in]; a plan needs their layout, not their data.
  const Tensor<T> x(Workspace::nowhere<T>(), rows, in_features);
  const Tensor<T> d_out(Workspace::nowhere<T>(), rows, out);
  Tensor<float> d_in(Workspace::nowhere<float>(), rows, in_features);
  std::size_t h = 0;
  for (const long height : options.rows.heights()) {
    forward_[h].rows = height;
    forward_[h].gemm.emplace(ws, x.topRows(height), weight_, output_.topRows(height), Op::none,
                             Op::none, Operand::weights);
    if (options.backward && options.partials_to_caller) {
      input_grad_by_rows_[h].rows = height;
      input_grad_by_rows_[h].gemm.emplace(ws, d_out.topRows(height), weight_, d_in.topRows(height),
                                          Op::none, Op::transpose, Operand::varies);
    }
    ++h;
  }
  if (!options.backward) return;
  if (!options.partials_to_caller)
    input_grad_gemm_.emplace(ws, d_out, weight_, input_grad_, Op::none, Op::transpose,
                             Operand::varies);
  // No block of no columns: a rank may hold fewer columns than there are blocks.
  grad_blocks_ = int(std::clamp<long>(out, 1, std::min(options.grad_blocks, kMaxGradBlocks)));
  for (int j = 0; j < grad_blocks_; ++j) {
    const Block cols = block_of(out, grad_blocks_, j);
    weight_grad_gemms_[std::size_t(j)].emplace(ws, x, d_out.middleCols(cols.first, cols.count),
                                               weight_grad_.middleCols(cols.first, cols.count),
                                               Op::transpose, Op::none, Operand::varies);
  }
}

template <typename T>
PlannedGemm<T>& ColumnParallelLinear<T>::plan_for(ByHeight& plans, long rows) {
  for (Planned& plan : plans)
    if (plan.gemm && plan.rows == rows) return *plan.gemm;
  throw std::logic_error("no GEMM planned for a block of this many rows");
}

template <typename T>
void ColumnParallelLinear<T>::prepare() {
  for (Planned& plan : forward_)
    if (plan.gemm) plan.gemm->prepare(weight_);
}

template <typename T>
void ColumnParallelLinear<T>::forward(const ConstRef<T>& x, Block rows) {
  auto out = output_.middleRows(rows.first, rows.count);
  plan_for(forward_, rows.count).run(x.middleRows(rows.first, rows.count), weight_, out);
  if (has_bias()) out.rowwise() += bias_.row(0);
}

template <typename T>
MatrixRef ColumnParallelLinear<T>::backward_input(const ConstRef<T>& d_out) {
  input_grad_gemm_->run(d_out, weight_, input_grad_);  // d_in = d_out·Wᵀ
  return input_grad_;
}

template <typename T>
void ColumnParallelLinear<T>::backward_input(const ConstRef<T>& d_out, Block rows, MatrixRef into) {
  plan_for(input_grad_by_rows_, rows.count)
      .run(d_out.middleRows(rows.first, rows.count), weight_, into);
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
  if (!has_bias()) return;
  // Row after row: every column's sum in the same order, whatever the width (--invariant).
  bias_grad_.setZero();
  for (long r = 0; r < d_out.rows(); ++r) bias_grad_ += d_out.row(r);
}

template class ColumnParallelLinear<float>;
template class ColumnParallelLinear<bfloat16>;

}  // namespace tp_mlp
