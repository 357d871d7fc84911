// parallel_layer: the pre-norm layer, composed of the two blocks and the norms (see
// parallel_layer.hpp).
#include "tp_mlp/parallel_layer.hpp"

#include "tp_mlp/init.hpp"

namespace tp_mlp {
namespace {

// Norm `which` (1 or 2) given its master weight and, for LayerNorm, bias.
void fill_norm(Norm& norm, const Config& cfg, int which) {
  fill_block(norm.weight(), master_norm_weight(cfg, which), cfg.seed, 0, 0);
  if (norm.bias().size() > 0) fill_block(norm.bias(), master_norm_bias(cfg, which), cfg.seed, 0, 0);
}

}  // namespace

template <typename Attention, typename Mlp>
TransformerLayer<Attention, Mlp>::TransformerLayer(Workspace& ws, Scheme scheme, const Config& cfg,
                                                   TpComm& tp, int overlap_chunks)
    : scheme_(scheme),
      tp_(tp),
      backward_(cfg.backward),
      tokens_here_(tokens_outside(outside_of(scheme), cfg.tokens(), tp)),
      sum_norm_grads_(outside_of(scheme) == Outside::sequence_parallel),
      norm1_(ws, cfg.norm_kind(), tokens_here_.count, cfg.hidden_size, kNormEps, cfg.backward),
      attention_(ws, scheme, cfg, tp),
      h_(ws.matrix<float>(tokens_here_.count, cfg.hidden_size)),
      norm2_(ws, cfg.norm_kind(), tokens_here_.count, cfg.hidden_size, kNormEps, cfg.backward),
      mlp_(ws, scheme, cfg, tp, overlap_chunks),
      y_(ws.matrix<float>(tokens_here_.count, cfg.hidden_size)),
      dh_(ws.matrix<float>(cfg.backward ? tokens_here_.count : 0, cfg.hidden_size)),
      dx_(ws.matrix<float>(cfg.backward ? tokens_here_.count : 0, cfg.hidden_size)),
      norm_grads_(ws.matrix<float>(cfg.backward && sum_norm_grads_ ? cfg.norm_tensors() : 0,
                                   cfg.hidden_size)) {
  if (ws.planning()) return;
  fill_norm(norm1_, cfg, 1);
  fill_norm(norm2_, cfg, 2);
}

template <typename Attention, typename Mlp>
long TransformerLayer<Attention, Mlp>::weight_bytes() const {
  const long norms = long(sizeof(float)) * (norm1_.parameter_count() + norm2_.parameter_count());
  return attention_.weight_bytes() + mlp_.weight_bytes() + norms;
}

template <typename Attention, typename Mlp>
LayerGradients TransformerLayer<Attention, Mlp>::layer_gradients() {
  auto of = [](const Norm& norm) {
    return NormGradients{&norm.weight_grad(),
                         norm.bias_grad().size() > 0 ? &norm.bias_grad() : nullptr};
  };
  return {attention_.gradients(), mlp_.gradients(), of(norm1_), of(norm2_)};
}

template <typename Attention, typename Mlp>
void TransformerLayer<Attention, Mlp>::plant_block_fault(Fault fault) {
  if (fault == Fault::norm_grad_not_summed)
    sum_norm_grads_ = false;
  else
    attention_.plant_block_fault(fault);
}

template <typename Attention, typename Mlp>
void TransformerLayer<Attention, Mlp>::sum_norm_grads() {
  Norm* norms[] = {&norm1_, &norm2_};
  long row = 0;
  for (Norm* norm : norms) {
    norm_grads_.row(row++) = norm->weight_grad();
    if (norm->bias_grad().size() > 0) norm_grads_.row(row++) = norm->bias_grad();
  }
  tp_.all_reduce_sum(norm_grads_.data(), norm_grads_.size());
  row = 0;
  for (Norm* norm : norms) {
    norm->weight_grad() = norm_grads_.row(row++);
    if (norm->bias_grad().size() > 0) norm->bias_grad() = norm_grads_.row(row++);
  }
}

template <typename Attention, typename Mlp>
ConstMatrixRef TransformerLayer<Attention, Mlp>::forward(const ConstMatrixRef& x) {
  x_.emplace(x);
  norm1_.forward(x);
  const ConstMatrixRef attention = attention_.forward(norm1_.output());  // g (ḡ) inside
  h_ = x + attention;
  norm2_.forward(h_);
  const ConstMatrixRef mlp = mlp_.forward(norm2_.output());
  y_ = h_ + mlp;
  at(Stage::x).emplace(x);
  at(Stage::attention_in).emplace(norm1_.output());
  at(Stage::attention_out).emplace(attention);
  at(Stage::h).emplace(h_);
  at(Stage::mlp_in).emplace(norm2_.output());
  at(Stage::mlp_out).emplace(mlp);
  return y_;
}

template <typename Attention, typename Mlp>
ConstMatrixRef TransformerLayer<Attention, Mlp>::backward(const ConstMatrixRef& dy) {
  const ConstMatrixRef mlp_dx = mlp_.backward(dy);  // f's (f̄'s) backward inside: this rank's
  norm2_.backward(h_, mlp_dx);
  dh_ = dy + norm2_.input_grad();
  const ConstMatrixRef attention_dx = attention_.backward(dh_);
  norm1_.backward(*x_, attention_dx);
  dx_ = dh_ + norm1_.input_grad();
  if (sum_norm_grads_) sum_norm_grads();
  at(Stage::mlp_dx).emplace(mlp_dx);
  at(Stage::norm2_dx).emplace(norm2_.input_grad());
  at(Stage::attention_dy).emplace(dh_);
  at(Stage::attention_dx).emplace(attention_dx);
  at(Stage::norm1_dx).emplace(norm1_.input_grad());
  return dx_;
}

template class TransformerLayer<ParallelAttention<float>, ParallelMlp<float>>;
template class TransformerLayer<ParallelAttention<bfloat16>, ParallelMlp<bfloat16>>;
template class TransformerLayer<InvariantAttention<float>, InvariantMlp<float>>;
template class TransformerLayer<InvariantAttention<bfloat16>, InvariantMlp<bfloat16>>;

}  // namespace tp_mlp
