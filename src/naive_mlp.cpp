// naive_mlp: the row-split forward with two all-reduces (see naive_mlp.hpp).
#include "tp_mlp/naive_mlp.hpp"

#include "tp_mlp/activation.hpp"
#include "tp_mlp/init.hpp"

namespace tp_mlp {

template <typename T>
NaiveMlp<T>::NaiveMlp(Workspace& ws, const Config& cfg, TpComm& tp)
    : activation_(cfg.activation),
      tokens_(cfg.tokens()),
      hidden_(block_of(cfg.hidden_size, tp.size(), tp.rank())),
      columns_(block_of(cfg.intermediate_size(), tp.size(), tp.rank())),
      projections_(cfg.projections()),
      x_in_(ws.matrix<T>(kIsFloat<T> ? 0 : tokens_, hidden_.count)),
      // Reads this rank's columns of X in place (fp32) or their copy as T.
      first_(ws, hidden_.count, kIsFloat<T> ? cfg.hidden_size : hidden_.count,
             projections_ * cfg.intermediate_size(), {false, false, Chunking::whole(tokens_)}),
      pre_exit_(ws, tp, Outside::replicated, cfg.reduction(), tokens_,
                projections_ * cfg.intermediate_size()),
      b_in_(ws.matrix<float>(cfg.bias ? 1 : 0, projections_ * columns_.count)),
      act_(ws.matrix<float>(tokens_, columns_.count)),
      act_in_(ws.matrix<T>(kIsFloat<T> ? 0 : tokens_, columns_.count)),
      second_(ws, columns_.count, columns_.count, cfg.hidden_size,
              {cfg.bias, false, Chunking::whole(tokens_)}),
      y_exit_(ws, tp, Outside::replicated, cfg.reduction(), tokens_, cfg.hidden_size) {
  if (ws.planning()) return;  // the layout is all a plan needs
  const long F = cfg.intermediate_size(), p = projections_;
  for (int r = 0; r < tp.size(); ++r) {
    const Block theirs = block_of(F, tp.size(), r);
    fill_first_layer(first_.weight().middleCols(p * theirs.first, p * theirs.count), cfg,
                     LayerPart::weight, hidden_, theirs);
  }
  fill_block(second_.weight(), master_w2(cfg), cfg.seed, columns_.first, 0);
  if (cfg.bias) {
    fill_first_layer(b_in_, cfg, LayerPart::bias, {0, 1}, columns_);
    fill_block(second_.bias(), master_b2(cfg), cfg.seed, 0, 0);
  }
  first_.prepare();
  second_.prepare();
}

template <typename T>
long NaiveMlp<T>::weight_bytes() const {
  return long(sizeof(T)) * long(first_.weight().size() + second_.weight().size());
}

template <typename T>
ConstMatrixRef NaiveMlp<T>::forward(const ConstMatrixRef& x) {
  const Block all = {0, tokens_};
  const auto x_mine = x.middleCols(hidden_.first, hidden_.count);  // [tokens, H/T]
  if constexpr (kIsFloat<T>) {
    first_.forward(x_mine, all);  // a partial sum of X·W1
  } else {
    to_bf16(x_mine, x_in_);
    first_.forward(x_in_, all);
  }
  MatrixRef pre = pre_exit_.leave(first_.partial());  // not linear: sum first
  auto pre_mine = pre.middleCols(projections_ * columns_.first,
                                 projections_ * columns_.count);  // [tokens, p·F/T]
  if (b_in_.size() > 0) pre_mine.rowwise() += b_in_.row(0);
  activate(activation_, pre_mine, act_);
  if constexpr (kIsFloat<T>) {
    second_.forward(act_, all);  // a partial sum of Y
  } else {
    to_bf16(act_, act_in_);
    second_.forward(act_in_, all);
  }
  MatrixRef y = y_exit_.leave(second_.partial());
  second_.add_bias(y);
  if constexpr (!kIsFloat<T>) round_to_bf16(y);
  return y;
}

template class NaiveMlp<float>;
template class NaiveMlp<bfloat16>;

}  // namespace tp_mlp
