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
  const double all = double(cfg.tokens()), here = double(tokens.count);
  const bool sp = scheme == Scheme::megatron_sp;
  SchemeBytes b;
  b.weights = 2 * H * width * f;               // w1_, w2_
  if (cfg.bias) b.buffers += (width + H) * f;  // b1_, b2_
  b.buffers += all * (width + H) * f;          // h_, y_sum_
  if (sp) b.buffers += (all + here) * H * f;   // x_full_, y_here_
  if (!cfg.backward) return b;
  b.buffers += 2 * all * width * f;            // activated_, dh_
  b.buffers += 2 * H * width * f;              // dw1_, dw2_
  if (cfg.bias) b.buffers += (width + H) * f;  // db1_, db2_
  b.buffers += all * H * f;                    // dx_sum_
  if (sp) b.buffers += (all + here) * H * f;   // dy_full_, dx_here_
  return b;
}

ColumnRowMlp::ColumnRowMlp(Scheme scheme, const Config& cfg, TpComm& tp)
    : scheme_(scheme),
      tp_(tp),
      sp_(scheme == Scheme::megatron_sp),
      bias_(cfg.bias),
      columns_(block_of(cfg.intermediate_size(), tp.size(), tp.rank())),
      tokens_(tokens_held(scheme, cfg, tp)) {
  const long H = cfg.hidden_size, tokens = cfg.tokens(), width = columns_.count;
  const Block all_hidden = {0, H}, one_row = {0, 1};
  w1_ = master_block(master_w1(cfg), cfg.seed, all_hidden, columns_);  // [H, 4H/T]
  w2_ = master_block(master_w2(cfg), cfg.seed, columns_, all_hidden);  // [4H/T, H]
  if (bias_) {
    b1_ = master_block(master_b1(cfg), cfg.seed, one_row, columns_);    // [1, 4H/T]
    b2_ = master_block(master_b2(cfg), cfg.seed, one_row, all_hidden);  // [1, H]
  }
  h_.resize(tokens, width);                   // [tokens, 4H/T], pre-activation
  y_sum_.resize(tokens, H);                   // [tokens, H], partial sums, then Y
  if (sp_) x_full_.resize(tokens, H);         // [tokens, H], gathered
  if (sp_) y_here_.resize(tokens_.count, H);  // [tokens/T, H]
  if (!cfg.backward) return;
  activated_.resize(tokens, width);            // [tokens, 4H/T], GeLU(h), kept for dW2
  dh_.resize(tokens, width);                   // [tokens, 4H/T], dGeLU then dH
  dw1_.resize(H, width);                       // [H, 4H/T]
  dw2_.resize(width, H);                       // [4H/T, H]
  if (bias_) db1_.resize(1, width);            // [1, 4H/T]
  if (bias_) db2_.resize(1, H);                // [1, H]
  dx_sum_.resize(tokens, H);                   // [tokens, H], partial sums, then dX
  if (sp_) dy_full_.resize(tokens, H);         // [tokens, H], gathered
  if (sp_) dx_here_.resize(tokens_.count, H);  // [tokens/T, H]
}

long ColumnRowMlp::weight_bytes() const { return bytes_of(w1_) + bytes_of(w2_); }

Gradients ColumnRowMlp::gradients() const { return {columns_.first, &dw1_, &dw2_, &db1_, &db2_}; }

const Matrix& ColumnRowMlp::forward(const Matrix& x) {
  x_ = &enter_region(x, x_full_);  // f: identity; f̄: all-gather the tokens
  // Without a backward pass to feed, GeLU overwrites the pre-activation in place.
  Matrix& activated = has_backward() ? activated_ : h_;
  gemm(*x_, w1_, h_);  // column-parallel: whole columns, no communication
  if (bias_) h_.rowwise() += b1_.row(0);
  gelu(h_, activated);                        // so GeLU is local
  gemm(activated, w2_, y_sum_);               // row-parallel: a partial sum of Y
  Matrix& y = leave_region(y_sum_, y_here_);  // g: all-reduce; ḡ: reduce-scatter
  if (bias_) y.rowwise() += b2_.row(0);       // once, after the sum, not T times
  return y;
}

const Matrix& ColumnRowMlp::backward(const Matrix& dy) {
  const Matrix& dy_all = enter_region(dy, dy_full_);  // g: identity; ḡ: all-gather
  if (bias_) db2_ = dy_all.colwise().sum();
  gemm(activated_, dy_all, dw2_, Op::transpose, Op::none);  // dW2 = GeLU(H)ᵀ·dY  [4H/T, H]
  gemm(dy_all, w2_, dh_, Op::none, Op::transpose);          // dGeLU = dY·W2ᵀ  [tokens, 4H/T]
  gelu_backward(h_, dh_);                                   // dH = dGeLU ⊙ GeLU'(H)
  if (bias_) db1_ = dh_.colwise().sum();
  gemm(*x_, dh_, dw1_, Op::transpose, Op::none);     // dW1 = Xᵀ·dH   [H, 4H/T]
  gemm(dh_, w1_, dx_sum_, Op::none, Op::transpose);  // dX partial = dH·W1ᵀ
  return leave_region(dx_sum_, dx_here_);            // f: all-reduce; f̄: reduce-scatter
}

const Matrix& ColumnRowMlp::enter_region(const Matrix& here, Matrix& full) {
  if (!sp_) return here;
  tp_.all_gather(here.data(), full.data(), here.size());
  return full;
}

Matrix& ColumnRowMlp::leave_region(Matrix& partial, Matrix& here) {
  if (!sp_) {
    tp_.all_reduce_sum(partial.data(), partial.size());  // a group of one returns at once
    return partial;
  }
  tp_.reduce_scatter_sum(partial.data(), here.data(), here.size());
  return here;
}

}  // namespace tp_mlp
