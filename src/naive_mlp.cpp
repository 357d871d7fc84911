// naive_mlp: the row-split forward with two all-reduces (see naive_mlp.hpp).
#include "tp_mlp/naive_mlp.hpp"

#include "tp_mlp/activation.hpp"
#include "tp_mlp/gemm.hpp"
#include "tp_mlp/init.hpp"

namespace tp_mlp {

SchemeBytes NaiveMlp::bytes(const Config& cfg, Block hidden, Block columns) {
  const double f = sizeof(float), H = cfg.hidden_size, p = cfg.projections();
  const double F = double(cfg.intermediate_size()), width = double(columns.count);
  const double tokens = double(cfg.tokens());
  SchemeBytes b;
  b.weights = (double(hidden.count) * p * F + width * H) * f;  // w_in_rows_, w2_rows_
  if (cfg.bias) b.buffers += (p * width + H) * f;              // b_in_, b2_
  b.buffers += tokens * (p * F + width + H) * f;               // pre_full_, act_, y_
  return b;
}

NaiveMlp::NaiveMlp(const Config& cfg, TpComm& tp)
    : tp_(tp),
      activation_(cfg.activation),
      bias_(cfg.bias),
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
  w2_rows_ = master_block(master_w2(cfg), cfg.seed, columns_, all_hidden);  // [F/T, H]
  if (bias_) {
    b_in_.resize(1, p * columns_.count);  // [1, p·F/T]
    fill_first_layer(b_in_, cfg, LayerPart::bias, one_row, columns_);
    b2_ = master_block(master_b2(cfg), cfg.seed, one_row, all_hidden);  // [1, H]
  }
  pre_full_.resize(tokens_, p * F);      // [tokens, p·F]
  act_.resize(tokens_, columns_.count);  // [tokens, F/T]
  y_.resize(tokens_, H);                 // [tokens, H]
}

long NaiveMlp::weight_bytes() const {
  return long((w_in_rows_.size() + w2_rows_.size()) * sizeof(float));
}

const Matrix& NaiveMlp::forward(const Matrix& x) {
  gemm(x.middleCols(hidden_.first, hidden_.count), w_in_rows_, pre_full_);  // partial X·W1
  tp_.all_reduce_sum(pre_full_.data(), pre_full_.size());                   // not linear: sum first
  auto pre_mine = pre_full_.middleCols(projections_ * columns_.first,
                                       projections_ * columns_.count);  // [tokens, p·F/T]
  if (bias_) pre_mine.rowwise() += b_in_.row(0);
  activate(activation_, pre_mine, act_);
  gemm(act_, w2_rows_, y_);  // a partial sum of Y
  tp_.all_reduce_sum(y_.data(), y_.size());
  if (bias_) y_.rowwise() += b2_.row(0);
  return y_;
}

}  // namespace tp_mlp
