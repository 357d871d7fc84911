// column_row_mlp: megatron, megatron-sp and serial (see column_row_mlp.hpp).
#include "tp_mlp/column_row_mlp.hpp"

#include "tp_mlp/activation.hpp"
#include "tp_mlp/gemm.hpp"
#include "tp_mlp/init.hpp"

namespace tp_mlp {
namespace {

long bytes_of(const Matrix& m) { return long(m.size() * sizeof(float)); }

// Under sequence parallelism x and y hold a block of the tokens; otherwise all of them.
Block tokens_held(Scheme scheme, const Config& cfg, const TpComm& tp) {
  if (scheme != Scheme::megatron_sp) return {0, cfg.tokens()};
  return block_of(cfg.tokens(), tp.size(), tp.rank());
}

}  // namespace

SchemeBytes ColumnRowMlp::bytes(Scheme scheme, const Config& cfg, Block columns, Block tokens) {
  const double f = sizeof(float), H = cfg.hidden_size, width = double(columns.count);
  const double in = cfg.projections() * width;  // the first layer's columns here: p·width
  const double all = double(cfg.tokens()), here = double(tokens.count);
  const bool sp = scheme == Scheme::megatron_sp;
  SchemeBytes b;
  b.weights = (H * in + width * H) * f;       // w_in_, w2_
  if (cfg.bias) b.buffers += (in + H) * f;    // b_in_, b2_
  b.buffers += all * (in + width + H) * f;    // pre_, act_, y_sum_
  if (sp) b.buffers += (all + here) * H * f;  // x_full_, y_here_
  if (!cfg.backward) return b;
  b.buffers += all * (width + in) * f;        // dact_, dpre_
  b.buffers += (H * in + width * H) * f;      // dw_in_, dw2_
  if (cfg.bias) b.buffers += (in + H) * f;    // db_in_, db2_
  b.buffers += all * H * f;                   // dx_sum_
  if (sp) b.buffers += (all + here) * H * f;  // dy_full_, dx_here_
  return b;
}

ColumnRowMlp::ColumnRowMlp(Scheme scheme, const Config& cfg, TpComm& tp)
    : scheme_(scheme),
      tp_(tp),
      activation_(cfg.activation),
      sp_(scheme == Scheme::megatron_sp),
      bias_(cfg.bias),
      columns_(block_of(cfg.intermediate_size(), tp.size(), tp.rank())),
      tokens_(tokens_held(scheme, cfg, tp)),
      hidden_size_(cfg.hidden_size) {
  const long H = cfg.hidden_size, tokens = cfg.tokens(), width = columns_.count;
  const long in = cfg.projections() * width;
  const Block all_hidden = {0, H}, one_row = {0, 1};
  w_in_.resize(H, in);  // [H, p·F/T]: W1's columns (and W3's), side by side
  fill_first_layer(w_in_, cfg, LayerPart::weight, all_hidden, columns_);
  w2_ = master_block(master_w2(cfg), cfg.seed, columns_, all_hidden);  // [F/T, H]
  if (bias_) {
    b_in_.resize(1, in);  // [1, p·F/T]
    fill_first_layer(b_in_, cfg, LayerPart::bias, one_row, columns_);
    b2_ = master_block(master_b2(cfg), cfg.seed, one_row, all_hidden);  // [1, H]
  }
  pre_.resize(tokens, in);                    // [tokens, p·F/T], the activation's input
  act_.resize(tokens, width);                 // [tokens, F/T], its output, kept for dW2
  y_sum_.resize(tokens, H);                   // [tokens, H], partial sums, then Y
  if (sp_) x_full_.resize(tokens, H);         // [tokens, H], gathered
  if (sp_) y_here_.resize(tokens_.count, H);  // [tokens/T, H]
  if (!cfg.backward) return;
  dact_.resize(tokens, width);                 // [tokens, F/T]
  dpre_.resize(tokens, in);                    // [tokens, p·F/T]
  dw_in_.resize(H, in);                        // [H, p·F/T]
  dw2_.resize(width, H);                       // [F/T, H]
  if (bias_) db_in_.resize(1, in);             // [1, p·F/T]
  if (bias_) db2_.resize(1, H);                // [1, H]
  dx_sum_.resize(tokens, H);                   // [tokens, H], partial sums, then dX
  if (sp_) dy_full_.resize(tokens, H);         // [tokens, H], gathered
  if (sp_) dx_here_.resize(tokens_.count, H);  // [tokens/T, H]
}

long ColumnRowMlp::weight_bytes() const { return bytes_of(w_in_) + bytes_of(w2_); }

Parameters ColumnRowMlp::parameters() {
  return {columns_, &w_in_, &w2_, bias_ ? &b_in_ : nullptr, bias_ ? &b2_ : nullptr};
}

Gradients ColumnRowMlp::gradients() const {
  return {columns_, &dw_in_, &dw2_, bias_ ? &db_in_ : nullptr, bias_ ? &db2_ : nullptr};
}

const Matrix& ColumnRowMlp::forward(const Matrix& x) {
  x_ = &enter_region(x, x_full_);  // f: identity; f̄: all-gather the tokens
  gemm(*x_, w_in_, pre_);          // column-parallel: whole columns, no communication
  if (bias_) pre_.rowwise() += b_in_.row(0);
  activate(activation_, pre_, act_);          // so the activation is local
  gemm(act_, w2_, y_sum_);                    // row-parallel: a partial sum of Y
  Matrix& y = leave_region(y_sum_, y_here_);  // g: all-reduce; ḡ: reduce-scatter
  if (bias_) y.rowwise() += b2_.row(0);       // once, after the sum, not T times
  return y;
}

const Matrix& ColumnRowMlp::backward(const Matrix& dy) {
  const Matrix& dy_all = enter_region(dy, dy_full_);  // g: identity; ḡ: all-gather
  if (bias_) db2_ = dy_all.colwise().sum();
  gemm(act_, dy_all, dw2_, Op::transpose, Op::none);   // dW2 = actᵀ·dY     [F/T, H]
  gemm(dy_all, w2_, dact_, Op::none, Op::transpose);   // dact = dY·W2ᵀ     [tokens, F/T]
  activate_backward(activation_, pre_, dact_, dpre_);  // dpre = dact ⊙ act'(pre)
  if (bias_) db_in_ = dpre_.colwise().sum();
  gemm(*x_, dpre_, dw_in_, Op::transpose, Op::none);     // dW_in = Xᵀ·dpre  [H, p·F/T]
  gemm(dpre_, w_in_, dx_sum_, Op::none, Op::transpose);  // dX partial = dpre·W_inᵀ
  return leave_region(dx_sum_, dx_here_);                // f: all-reduce; f̄: reduce-scatter
}

const Matrix& ColumnRowMlp::enter_region(const Matrix& here, Matrix& full) {
  if (!sp_) return here;
  tp_.all_gather_rows(here.data(), full.data(), full.rows(), hidden_size_);
  return full;
}

Matrix& ColumnRowMlp::leave_region(Matrix& partial, Matrix& here) {
  if (!sp_) {
    tp_.all_reduce_sum(partial.data(), partial.size());  // a group of one returns at once
    return partial;
  }
  tp_.reduce_scatter_rows(partial.data(), here.data(), partial.rows(), hidden_size_);
  return here;
}

}  // namespace tp_mlp
