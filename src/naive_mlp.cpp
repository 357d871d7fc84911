// naive_mlp: the row-split forward with two all-reduces (see naive_mlp.hpp).
#include "tp_mlp/naive_mlp.hpp"

#include "tp_mlp/activation.hpp"
#include "tp_mlp/gemm.hpp"
#include "tp_mlp/init.hpp"

namespace tp_mlp {

SchemeBytes NaiveMlp::bytes(const Config& cfg, Block hidden, Block columns) {
  const double f = sizeof(float), H = cfg.hidden_size, FF = double(cfg.intermediate_size());
  const double tokens = double(cfg.tokens());
  SchemeBytes b;
  b.weights = (double(hidden.count) * FF + double(columns.count) * H) * f;  // w1_rows_, w2_rows_
  if (cfg.bias) b.buffers += (double(columns.count) + H) * f;               // b1_, b2_
  b.buffers += tokens * (FF + H) * f;                                       // h_full_, y_
  return b;
}

NaiveMlp::NaiveMlp(const Config& cfg, TpComm& tp)
    : tp_(tp),
      bias_(cfg.bias),
      tokens_(cfg.tokens()),
      hidden_(block_of(cfg.hidden_size, tp.size(), tp.rank())),
      columns_(block_of(cfg.intermediate_size(), tp.size(), tp.rank())) {
  const long H = cfg.hidden_size, FF = cfg.intermediate_size();
  const Block all_hidden = {0, H}, all_columns = {0, FF}, one_row = {0, 1};
  w1_rows_ = master_block(master_w1(cfg), cfg.seed, hidden_, all_columns);  // [H/T, 4H]
  w2_rows_ = master_block(master_w2(cfg), cfg.seed, columns_, all_hidden);  // [4H/T, H]
  if (bias_) {
    b1_ = master_block(master_b1(cfg), cfg.seed, one_row, columns_);    // [1, 4H/T]
    b2_ = master_block(master_b2(cfg), cfg.seed, one_row, all_hidden);  // [1, H]
  }
  h_full_.resize(tokens_, FF);  // [tokens, 4H]
  y_.resize(tokens_, H);        // [tokens, H]
}

long NaiveMlp::weight_bytes() const {
  return long((w1_rows_.size() + w2_rows_.size()) * sizeof(float));
}

const Matrix& NaiveMlp::forward(const Matrix& x) {
  gemm(x.middleCols(hidden_.first, hidden_.count), w1_rows_, h_full_);  // a partial sum of X·W1
  tp_.all_reduce_sum(h_full_.data(), h_full_.size());  // GeLU is not linear: sum first
  auto h_mine = h_full_.middleCols(columns_.first, columns_.count);  // [tokens, 4H/T]
  if (bias_) h_mine.rowwise() += b1_.row(0);
  gelu(h_mine, h_mine);
  gemm(h_mine, w2_rows_, y_);  // a partial sum of Y
  tp_.all_reduce_sum(y_.data(), y_.size());
  if (bias_) y_.rowwise() += b2_.row(0);
  return y_;
}

}  // namespace tp_mlp
