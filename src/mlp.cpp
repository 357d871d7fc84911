// mlp: the schemes' shards, forward and backward passes (see mlp.hpp).
#include "tp_mlp/mlp.hpp"

#include <cmath>
#include <stdexcept>

#include <unsupported/Eigen/SpecialFunctions>  // the vectorised erf

#include "tp_mlp/gemm.hpp"
#include "tp_mlp/init.hpp"

namespace tp_mlp {

void gelu(ConstMatrixRef h, MatrixRef out) {
  out.array() = 0.5f * h.array() * (1.0f + (h.array() * float(M_SQRT1_2)).erf());
}

void gelu_backward(ConstMatrixRef h, MatrixRef grad) {
  const float inv_sqrt_2pi = float(0.5 * M_2_SQRTPI * M_SQRT1_2);  // φ(0) = 1/√(2π)
  const auto x = h.array();
  grad.array() *= 0.5f * (1.0f + (x * float(M_SQRT1_2)).erf()) +  // Φ(h)
                  x * inv_sqrt_2pi * (-0.5f * x.square()).exp();  // h·φ(h)
}

const Matrix& MlpScheme::backward(const Matrix&) {
  throw std::logic_error("this scheme has no backward pass");
}

namespace {

long bytes_of(const Matrix& m) { return long(m.size() * sizeof(float)); }

// A block of a master tensor: rows [row0, row0+rows) x cols [col0, col0+cols).
Matrix master_block(const MasterTensor& t, const Config& cfg, long row0, long rows, long col0,
                    long cols) {
  Matrix m(rows, cols);
  fill_block(m, t, cfg.seed, row0, col0);
  return m;
}

// megatron, megatron-sp and serial: W1 by columns, W2 by rows (serial: all of them).
//
// Megatron-LM names the communication at the region's edges as conjugate operators
// (tensor_parallel/mappings.py), each a pair forward | backward:
//   f  copy_to_tensor_parallel_region             identity       | all-reduce
//   g  reduce_from_tensor_parallel_region         all-reduce     | identity
//   f̄  gather_from_sequence_parallel_region       all-gather     | reduce-scatter
//   ḡ  reduce_scatter_to_sequence_parallel_region reduce-scatter | all-gather
// The forward enters through f (f̄) and leaves through g (ḡ); the backward enters through
// g's (ḡ's) backward and leaves through f's (f̄'s). Entering is the same operation in both
// directions, and so is leaving: enter_region() and leave_region() below serve both.
class ColumnRowMlp final : public MlpScheme {
 public:
  ColumnRowMlp(Scheme scheme, const Config& cfg, TpComm* tp)
      : scheme_(scheme), tp_(tp), sp_(scheme == Scheme::megatron_sp), bias_(cfg.bias) {
    const int ways = tp ? tp->size() : 1;
    const long H = cfg.hidden_size, tokens = cfg.tokens(), width = cfg.intermediate_size() / ways;
    first_column_ = tp ? tp->rank() * width : 0;
    tokens_here_ = sp_ ? tokens / ways : tokens;
    first_token_ = sp_ ? tp->rank() * tokens_here_ : 0;
    w1_ = master_block(master_w1(cfg), cfg, 0, H, first_column_, width);  // [H, 4H/T]
    w2_ = master_block(master_w2(cfg), cfg, first_column_, width, 0, H);  // [4H/T, H]
    if (bias_) {
      b1_ = master_block(master_b1(cfg), cfg, 0, 1, first_column_, width);  // [1, 4H/T]
      b2_ = master_block(master_b2(cfg), cfg, 0, 1, 0, H);                  // [1, H]
    }
    if (sp_) x_full_.resize(tokens, H);      // [tokens, H], gathered
    h_.resize(tokens, width);                // [tokens, 4H/T], pre-activation
    y_sum_.resize(tokens, H);                // [tokens, H], partial sums, then Y
    if (sp_) y_here_.resize(tokens_here_, H);  // [tokens/T, H]
    if (cfg.backward) {
      g_.resize(tokens, width);              // [tokens, 4H/T], GeLU(h) kept for dW2
      if (sp_) dy_full_.resize(tokens, H);   // [tokens, H], gathered
      dh_.resize(tokens, width);             // [tokens, 4H/T], dG then dH
      dw1_.resize(H, width);
      dw2_.resize(width, H);
      if (bias_) db1_.resize(1, width);
      if (bias_) db2_.resize(1, H);
      dx_sum_.resize(tokens, H);             // [tokens, H], partial sums, then dX
      if (sp_) dx_here_.resize(tokens_here_, H);
    }
  }

  Scheme scheme() const override { return scheme_; }
  long first_token() const override { return first_token_; }
  long tokens_here() const override { return tokens_here_; }
  long weight_bytes() const override { return bytes_of(w1_) + bytes_of(w2_); }
  bool has_backward() const override { return dw1_.size() > 0; }
  Gradients gradients() const override { return {first_column_, &dw1_, &dw2_, &db1_, &db2_}; }

  const Matrix& forward(const Matrix& x) override {
    x_ = &enter_region(x, x_full_);   // f: identity; f̄: all-gather the tokens
    Matrix& g = has_backward() ? g_ : h_;
    gemm(*x_, w1_, h_);               // column-parallel: whole columns, no communication
    if (bias_) h_.rowwise() += b1_.row(0);
    gelu(h_, g);                      // so GeLU is local
    gemm(g, w2_, y_sum_);             // row-parallel: a partial sum of Y
    Matrix& y = leave_region(y_sum_, y_here_);  // g: all-reduce; ḡ: reduce-scatter
    if (bias_) y.rowwise() += b2_.row(0);       // once, after the sum, not T times
    return y;
  }

  const Matrix& backward(const Matrix& dy) override {
    const Matrix& dy_all = enter_region(dy, dy_full_);  // g: identity; ḡ: all-gather
    if (bias_) db2_ = dy_all.colwise().sum();
    gemm(g_, dy_all, dw2_, Op::transpose, Op::none);    // dW2 = Gᵀ·dY   [4H/T, H]
    gemm(dy_all, w2_, dh_, Op::none, Op::transpose);    // dG = dY·W2ᵀ   [tokens, 4H/T]
    gelu_backward(h_, dh_);                             // dH = dG ⊙ GeLU'(H)
    if (bias_) db1_ = dh_.colwise().sum();
    gemm(*x_, dh_, dw1_, Op::transpose, Op::none);      // dW1 = Xᵀ·dH   [H, 4H/T]
    gemm(dh_, w1_, dx_sum_, Op::none, Op::transpose);   // dX partial = dH·W1ᵀ
    return leave_region(dx_sum_, dx_here_);             // f: all-reduce; f̄: reduce-scatter
  }

 private:
  const Matrix& enter_region(const Matrix& here, Matrix& full) {
    if (!sp_) return here;
    tp_->all_gather(here.data(), full.data(), here.size());
    return full;
  }

  Matrix& leave_region(Matrix& partial, Matrix& here) {
    if (!tp_) return partial;  // serial: nothing to sum
    if (!sp_) {
      tp_->all_reduce_sum(partial.data(), partial.size());
      return partial;
    }
    tp_->reduce_scatter_sum(partial.data(), here.data(), here.size());
    return here;
  }

  const Scheme scheme_;
  TpComm* const tp_;  // null for serial
  const bool sp_, bias_;
  long first_column_ = 0, first_token_ = 0, tokens_here_ = 0;
  const Matrix* x_ = nullptr;  // the forward's whole input, kept for dW1
  Matrix w1_, w2_, b1_, b2_;
  Matrix x_full_, h_, g_, y_sum_, y_here_;
  Matrix dy_full_, dh_, dw1_, dw2_, db1_, db2_, dx_sum_, dx_here_;
};

class NaiveMlp final : public MlpScheme {
 public:
  NaiveMlp(const Config& cfg, TpComm& tp) : tp_(tp), bias_(cfg.bias), tokens_(cfg.tokens()) {
    const long H = cfg.hidden_size, FF = cfg.intermediate_size();
    h_rows_ = H / tp.size();
    h_first_ = tp.rank() * h_rows_;
    ff_cols_ = FF / tp.size();
    ff_first_ = tp.rank() * ff_cols_;
    w1_rows_ = master_block(master_w1(cfg), cfg, h_first_, h_rows_, 0, FF);  // [H/T, 4H]
    w2_rows_ = master_block(master_w2(cfg), cfg, ff_first_, ff_cols_, 0, H); // [4H/T, H]
    if (bias_) {
      b1_mine_ = master_block(master_b1(cfg), cfg, 0, 1, ff_first_, ff_cols_);  // [1, 4H/T]
      b2_ = master_block(master_b2(cfg), cfg, 0, 1, 0, H);                      // [1, H]
    }
    h_full_.resize(tokens_, FF);  // [tokens, 4H]
    y_.resize(tokens_, H);        // [tokens, H]
  }
  Scheme scheme() const override { return Scheme::naive; }
  long tokens_here() const override { return tokens_; }
  long weight_bytes() const override { return bytes_of(w1_rows_) + bytes_of(w2_rows_); }

  const Matrix& forward(const Matrix& x) override {
    gemm(x.middleCols(h_first_, h_rows_), w1_rows_, h_full_);  // a partial sum of X·W1
    tp_.all_reduce_sum(h_full_.data(), h_full_.size());  // GeLU is not linear: sum first
    auto h_mine = h_full_.middleCols(ff_first_, ff_cols_);     // [tokens, 4H/T]
    if (bias_) h_mine.rowwise() += b1_mine_.row(0);
    gelu(h_mine, h_mine);
    gemm(h_mine, w2_rows_, y_);    // a partial sum of Y
    tp_.all_reduce_sum(y_.data(), y_.size());
    if (bias_) y_.rowwise() += b2_.row(0);
    return y_;
  }

 private:
  TpComm& tp_;
  const bool bias_;
  const long tokens_;
  long h_rows_, h_first_, ff_cols_, ff_first_;
  Matrix w1_rows_, w2_rows_, b1_mine_, b2_, h_full_, y_;
};

}  // namespace

std::unique_ptr<MlpScheme> make_scheme(Scheme scheme, const Config& cfg, TpComm& tp) {
  switch (scheme) {
    case Scheme::megatron:
    case Scheme::megatron_sp: return std::make_unique<ColumnRowMlp>(scheme, cfg, &tp);
    case Scheme::naive: return std::make_unique<NaiveMlp>(cfg, tp);
    case Scheme::serial: return std::make_unique<ColumnRowMlp>(scheme, cfg, nullptr);
  }
  return nullptr;  // unreachable: the switch covers every scheme
}

}  // namespace tp_mlp
