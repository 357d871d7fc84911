// naive_mlp: the row-split forward with two all-reduces (see naive_mlp.hpp).
#include "tp_mlp/naive_mlp.hpp"

#include <type_traits>

#include "tp_mlp/activation.hpp"
#include "tp_mlp/init.hpp"

namespace tp_mlp {
namespace {

template <typename T>
constexpr bool kFloat = std::is_same_v<T, float>;

}  // namespace

template <typename T>
SchemeBytes NaiveMlp<T>::bytes(const Config& cfg, Block hidden, Block columns) {
  const double f = sizeof(float), e = sizeof(T), H = cfg.hidden_size, p = cfg.projections();
  const double F = double(cfg.intermediate_size()), width = double(columns.count);
  const double tokens = double(cfg.tokens()), rows = double(hidden.count);
  const double reduce = cfg.reduction() == DType::bf16 ? 2 : 0;  // bf16 partial sums
  const long t = cfg.tokens();
  SchemeBytes b;
  b.weights = (rows * p * F + width * H) * e;                // w_in_rows_, w2_rows_
  if (cfg.bias) b.buffers += (p * width + H) * f;            // b_in_, b2_
  b.buffers += tokens * (p * F + width + H) * f;             // pre_full_, act_, y_
  if (!kFloat<T>) b.buffers += tokens * (rows + width) * e;  // x_in_, act_in_
  b.buffers += tokens * (p * F + H) * reduce;                // pre_b_, y_b_
  b.buffers += PlannedGemm<T>::bytes_for(t, long(p * F), hidden.count, Bf16Gemm::B::weights) +
               PlannedGemm<T>::bytes_for(t, cfg.hidden_size, columns.count, Bf16Gemm::B::weights);
  return b;
}

template <typename T>
NaiveMlp<T>::NaiveMlp(const Config& cfg, TpComm& tp)
    : tp_(tp),
      activation_(cfg.activation),
      bias_(cfg.bias),
      reduce_bf16_(cfg.reduction() == DType::bf16),
      tokens_(cfg.tokens()),
      hidden_(block_of(cfg.hidden_size, tp.size(), tp.rank())),
      columns_(block_of(cfg.intermediate_size(), tp.size(), tp.rank())),
      projections_(cfg.projections()) {
  const long H = cfg.hidden_size, F = cfg.intermediate_size(), p = projections_;
  const Block all_hidden = {0, H}, one_row = {0, 1};
  w_in_rows_.resize(hidden_.count, p * F);  // [H/T, p·F], every rank's [W1 | W3] in turn
  for (int r = 0; r < tp.size(); ++r) {
    const Block theirs = block_of(F, tp.size(), r);
    fill_first_layer(w_in_rows_.middleCols(p * theirs.first, p * theirs.count), cfg,
                     LayerPart::weight, hidden_, theirs);
  }
  w2_rows_.resize(columns_.count, H);  // [F/T, H]
  fill_block(w2_rows_, master_w2(cfg), cfg.seed, columns_.first, 0);
  if (bias_) {
    b_in_.resize(1, p * columns_.count);  // [1, p·F/T]
    fill_first_layer(b_in_, cfg, LayerPart::bias, one_row, columns_);
    b2_ = master_block(master_b2(cfg), cfg.seed, one_row, all_hidden);  // [1, H]
  }
  pre_full_.resize(tokens_, p * F);                         // [tokens, p·F]
  act_.resize(tokens_, columns_.count);                     // [tokens, F/T]
  y_.resize(tokens_, H);                                    // [tokens, H]
  if (!kFloat<T>) x_in_.resize(tokens_, hidden_.count);     // [tokens, H/T], as T
  if (!kFloat<T>) act_in_.resize(tokens_, columns_.count);  // [tokens, F/T], as T
  if (reduce_bf16_) pre_b_.resize(tokens_, p * F);
  if (reduce_bf16_) y_b_.resize(tokens_, H);
  // The layouts the GEMMs read, which is all a plan needs: this rank's columns of x in place
  // (fp32) or their copy as T, and the activation or its copy as T.
  using Layout = Eigen::Map<const MatrixT, 0, Eigen::OuterStride<>>;
  const Layout x_layout(nullptr, tokens_, hidden_.count,
                        Eigen::OuterStride<>(kFloat<T> ? H : hidden_.count));
  const Layout act_layout(nullptr, tokens_, columns_.count, Eigen::OuterStride<>(columns_.count));
  first_.emplace(x_layout, w_in_rows_, pre_full_, Op::none, Op::none, Bf16Gemm::B::weights);
  second_.emplace(act_layout, w2_rows_, y_, Op::none, Op::none, Bf16Gemm::B::weights);
}

template <typename T>
long NaiveMlp<T>::weight_bytes() const {
  return long((w_in_rows_.size() + w2_rows_.size()) * long(sizeof(T)));
}

template <typename T>
void NaiveMlp<T>::all_reduce(Matrix& partial, MatrixB& partial_b) {
  if (!reduce_bf16_) {
    tp_.all_reduce_sum(partial.data(), partial.size());
    return;
  }
  to_bf16(partial, partial_b);
  tp_.all_reduce_sum(partial_b.data(), partial_b.size());
  to_float(partial_b, partial);
}

template <typename T>
const Matrix& NaiveMlp<T>::forward(const Matrix& x) {
  const auto x_mine = x.middleCols(hidden_.first, hidden_.count);  // [tokens, H/T]
  if constexpr (kFloat<T>) {
    first_->run(x_mine, w_in_rows_, pre_full_);  // a partial sum of X·W1
  } else {
    to_bf16(x_mine, x_in_);
    first_->run(x_in_, w_in_rows_, pre_full_);
  }
  all_reduce(pre_full_, pre_b_);  // not linear: sum first
  auto pre_mine = pre_full_.middleCols(projections_ * columns_.first,
                                       projections_ * columns_.count);  // [tokens, p·F/T]
  if (bias_) pre_mine.rowwise() += b_in_.row(0);
  activate(activation_, pre_mine, act_);
  if constexpr (kFloat<T>) {
    second_->run(act_, w2_rows_, y_);  // a partial sum of Y
  } else {
    to_bf16(act_, act_in_);
    second_->run(act_in_, w2_rows_, y_);
  }
  all_reduce(y_, y_b_);
  if (bias_) y_.rowwise() += b2_.row(0);
  if constexpr (!kFloat<T>) round_to_bf16(y_);
  return y_;
}

template class NaiveMlp<float>;
template class NaiveMlp<bfloat16>;

}  // namespace tp_mlp
