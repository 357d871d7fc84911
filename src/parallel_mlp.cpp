// parallel_mlp: the column→row MLP schemes, composed of the parts (see parallel_mlp.hpp).
#include "tp_mlp/parallel_mlp.hpp"

#include "tp_mlp/activation.hpp"
#include "tp_mlp/init.hpp"
#include "tp_mlp/planned_gemm.hpp"

namespace tp_mlp {
namespace {

// With overlap, a progress test between GEMM blocks keeps the all-reduce in flight moving.
// Each chunk's GEMMs run in this many blocks of rows (blocks of columns measured no faster)
// where the kernel keeps the weights packed; elsewhere each call packs them again, and halving
// a call's rows costs what the overlap gains (dnnl_sgemm held to AVX2, [m, 1024]·[1024, 4096]:
// 94 GFLOP/s at m = 1024 and 512, 81 at 256, 79 at 64), so a chunk is one block there...
int blocks_per_chunk(int chunks, DType dtype) {
  constexpr int kBlocksPerChunk = 2;
  return chunks > 1 && packs_weights_once(dtype) ? kBlocksPerChunk : 1;
}
// ...and dW_in = Xᵀ·dpre, behind which dX's all-reduce travels, in this many blocks of columns,
// however many chunks the forward has: each block packs all of Xᵀ again.
constexpr int kBackwardBlocks = 4;

}  // namespace

template <typename T>
ParallelMlp<T>::ParallelMlp(Workspace& ws, Scheme scheme, const Config& cfg, TpComm& tp, int chunks)
    : scheme_(scheme),
      tp_(tp),
      activation_(cfg.activation),
      backward_(cfg.backward),
      columns_(block_of(cfg.intermediate_size(), tp.size(), tp.rank())),
      tokens_(tokens_outside(outside_of(scheme), cfg.tokens(), tp)),
      chunking_{cfg.tokens(), chunks, blocks_per_chunk(chunks, cfg.dtype)},
      x_entry_(ws, tp, outside_of(scheme), cfg.tokens(), cfg.hidden_size),
      first_(ws, tp, cfg.hidden_size, Projections::same(columns_.count, cfg.projections()),
             {cfg.bias, cfg.backward, chunking_, chunks > 1 ? kBackwardBlocks : 1}),
      act_(ws.matrix<float>(cfg.tokens(), columns_.count)),
      act_in_(ws.matrix<T>(kIsFloat<T> ? 0 : cfg.tokens(), columns_.count)),
      second_(ws, columns_.count, columns_.count, cfg.hidden_size,
              {cfg.bias, cfg.backward, chunking_}),
      y_exit_(ws, tp, outside_of(scheme), cfg.reduction(), cfg.tokens(), cfg.hidden_size),
      dy_entry_(ws, tp, outside_of(scheme), cfg.backward ? cfg.tokens() : 0, cfg.hidden_size),
      dpre_(ws.matrix<float>(cfg.backward ? cfg.tokens() : 0, first_.weight().cols())),
      dpre_in_(
          ws.matrix<T>(cfg.backward && !kIsFloat<T> ? cfg.tokens() : 0, first_.weight().cols())),
      dx_exit_(ws, tp, outside_of(scheme), cfg.reduction(), cfg.backward ? cfg.tokens() : 0,
               cfg.hidden_size) {
  if (ws.planning()) return;  // the layout is all a plan needs
  const Block all_hidden = {0, cfg.hidden_size}, one_row = {0, 1};
  fill_first_layer(first_.weight(), cfg, LayerPart::weight, all_hidden, columns_);
  fill_block(second_.weight(), master_w2(cfg), cfg.seed, columns_.first, 0);
  if (cfg.bias) {
    fill_first_layer(first_.bias(), cfg, LayerPart::bias, one_row, columns_);
    fill_block(second_.bias(), master_b2(cfg), cfg.seed, 0, 0);
  }
  parameters_changed();
}

template <typename T>
long ParallelMlp<T>::weight_bytes() const {
  return long(sizeof(T)) * long(first_.weight().size() + second_.weight().size());
}

template <typename T>
Parameters ParallelMlp<T>::parameters() {
  return shard_parameters<Parameters>(columns_, first_, second_);
}

template <typename T>
ParametersB ParallelMlp<T>::parameters_bf16() {
  return shard_parameters<ParametersB>(columns_, first_, second_);
}

template <typename T>
void ParallelMlp<T>::parameters_changed() {
  first_.prepare();
  second_.prepare();
}

template <typename T>
Gradients ParallelMlp<T>::gradients() {
  return shard_gradients(columns_, first_, second_);
}

template <typename T>
ConstMatrixRef ParallelMlp<T>::forward(const ConstMatrixRef& x_here) {
  x_.emplace(x_entry_.enter(x_here));  // f: identity; f̄: all-gather the tokens
  const ConstRef<T>& x = *x_;
  for (int c = 0; c < chunking_.chunks; ++c) {
    for (int j = 0; j < chunking_.blocks; ++j) {  // column-parallel: whole columns, no comm
      first_.forward(x, chunking_.block(c, j));
      if (overlapped()) tp_.progress();
    }
    const Block chunk = chunking_.chunk(c);
    auto act = act_.middleRows(chunk.first, chunk.count);
    activate(activation_, first_.output().middleRows(chunk.first, chunk.count), act);  // local
    if constexpr (!kIsFloat<T>) to_bf16(act, act_in_.middleRows(chunk.first, chunk.count));
    for (int j = 0; j < chunking_.blocks; ++j) {  // row-parallel: a partial sum of Y
      second_.forward(gemm_input(act_, act_in_), chunking_.block(c, j));
      if (overlapped()) tp_.progress();
    }
    if (overlapped())
      y_exit_.start_leaving(second_.partial(), chunk);  // g, while the next computes
  }
  // g: all-reduce; ḡ: reduce-scatter
  MatrixRef y =
      overlapped() ? y_exit_.finish_leaving(second_.partial()) : y_exit_.leave(second_.partial());
  second_.add_bias(y);  // once, after the sum, not T times
  if constexpr (!kIsFloat<T>) round_to_bf16(y);
  return y;
}

template <typename T>
ConstMatrixRef ParallelMlp<T>::backward(const ConstMatrixRef& dy_here) {
  const ConstRef<T> dy = dy_entry_.enter(dy_here);  // g's backward: identity; ḡ's: all-gather
  second_.backward(gemm_input(act_, act_in_), dy);  // dW2 = actᵀ·dY, db2, dact = dY·W2ᵀ
  activate_backward(activation_, first_.output(), second_.input_grad(), dpre_);  // ⊙ act'(pre)
  if constexpr (!kIsFloat<T>) to_bf16(dpre_, dpre_in_);
  const ConstRef<T> dpre = gemm_input(dpre_, dpre_in_);
  MatrixRef dx_partial = first_.backward_input(dpre);  // dX's partial sum = dpre·W_inᵀ
  // f's backward: an all-reduce (set off now when overlapped, to travel during dW_in); f̄'s: a
  // reduce-scatter
  if (overlapped()) dx_exit_.start_leaving(dx_partial, {0, dx_partial.rows()});
  first_.backward_weights(*x_, dpre, dpre_);  // dW_in = Xᵀ·dpre, db_in
  MatrixRef dx = overlapped() ? dx_exit_.finish_leaving(dx_partial) : dx_exit_.leave(dx_partial);
  if constexpr (!kIsFloat<T>) round_to_bf16(dx);
  return dx;
}

template class ParallelMlp<float>;
template class ParallelMlp<bfloat16>;

}  // namespace tp_mlp
