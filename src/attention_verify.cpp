// attention_verify: the attention block in float64 with an error bound beside every value, and
// the comparisons (see attention_verify.hpp).
#include "tp_mlp/attention_verify.hpp"

#include <algorithm>
#include <cmath>

#include "tp_mlp/agreement.hpp"
#include "tp_mlp/attention_reference.hpp"
#include "tp_mlp/exact_sum.hpp"
#include "tp_mlp/init.hpp"
#include "tp_mlp/rounding.hpp"

namespace tp_mlp {
namespace {

// RoPE's pairs (i, i + d/2) of every head: each error becomes the pair's errors added, plus 4u
// of the pair's magnitudes `mag`, which become their sum (|rotated| ≤ |x1| + |x2|).
void rotate_bounds(MatrixDRef err, MatrixDRef mag, long d) {
  const long half = d / 2;
  for (long r = 0; r < err.rows(); ++r)
    for (long head = 0; head < err.cols() / d; ++head)
      for (long i = 0; i < half; ++i) {
        const long c1 = head * d + i, c2 = c1 + half;
        const double m = mag(r, c1) + mag(r, c2);
        err(r, c1) = err(r, c2) = err(r, c1) + err(r, c2) + 4 * kFloatUnitRoundoff * m;
        mag(r, c1) = mag(r, c2) = m;
      }
}

}  // namespace

AttentionReference::AttentionReference(Workspace& ws, const Config& cfg)
    : cfg_(cfg),
      input_(input_roundoff(cfg)),
      reduce_(bf16_reduction(cfg)),
      lost_(underflow_factor(cfg)),
      mistake_(mistake(cfg.dtype)),
      H_(cfg.hidden_size),
      N_(cfg.heads()),
      K_(cfg.kv_heads()),
      d_(cfg.head_size()),
      s_(cfg.seq_len),
      t_(cfg.tokens()),
      width_((N_ + 2 * K_) * d_),
      scale_(1.0 / std::sqrt(double(d_))),
      x_(ws.matrix<double>(t_, H_)),
      x_abs_(ws.matrix<double>(t_, H_)),
      dy_(ws.matrix<double>(cfg.backward ? t_ : 0, H_)),
      dy_abs_(ws.matrix<double>(dy_.rows(), H_)),
      w_(ws.matrix<double>(H_, width_)),
      w_abs_(ws.matrix<double>(H_, width_)),
      b_(ws.matrix<double>(1, width_)),
      wo_(ws.matrix<double>(N_ * d_, H_)),
      wo_abs_(ws.matrix<double>(N_ * d_, H_)),
      bo_(ws.matrix<double>(1, H_)),
      qkv_(ws.matrix<double>(t_, width_)),
      qkv_err_(ws.matrix<double>(t_, width_)),
      qkv_abs_(ws.matrix<double>(t_, width_)),
      qkv_hi_(ws.matrix<double>(t_, width_)),
      o_(ws.matrix<double>(t_, N_ * d_)),
      o_err_(ws.matrix<double>(t_, N_ * d_)),
      o_hi_(ws.matrix<double>(t_, N_ * d_)),
      y_(ws.matrix<double>(t_, H_)),
      y_bound_(ws.matrix<double>(t_, H_)),
      do_(ws.matrix<double>(dy_.rows(), N_ * d_)),
      do_err_(ws.matrix<double>(dy_.rows(), N_ * d_)),
      do_abs_(ws.matrix<double>(dy_.rows(), N_ * d_)),
      do_hi_(ws.matrix<double>(dy_.rows(), N_ * d_)),
      dqkv_(ws.matrix<double>(dy_.rows(), width_)),
      dqkv_err_(ws.matrix<double>(dy_.rows(), width_)),
      dqkv_hi_(ws.matrix<double>(dy_.rows(), width_)),
      dx_(ws.matrix<double>(dy_.rows(), H_)),
      dx_bound_(ws.matrix<double>(dy_.rows(), H_)),
      dw_(ws.matrix<double>(cfg.backward ? H_ : 0, width_)),
      dw_bound_(ws.matrix<double>(dw_.rows(), width_)),
      db_(ws.matrix<double>(cfg.backward ? 1 : 0, width_)),
      db_bound_(ws.matrix<double>(db_.rows(), width_)),
      dwo_(ws.matrix<double>(cfg.backward ? N_ * d_ : 0, H_)),
      dwo_bound_(ws.matrix<double>(dwo_.rows(), H_)),
      dbo_(ws.matrix<double>(cfg.backward ? 1 : 0, H_)),
      dbo_bound_(ws.matrix<double>(dbo_.rows(), H_)),
      y_grid_(ws.matrix<double>(cfg.invariant ? t_ : 0, 1)),
      dx_grid_(ws.matrix<double>(cfg.invariant && cfg.backward ? t_ : 0, 1)),
      p_(ws.matrix<double>(s_, s_)),
      p_err_(ws.matrix<double>(s_, s_)),
      p_hi_(ws.matrix<double>(s_, s_)),
      ds_(ws.matrix<double>(cfg.backward ? s_ : 0, s_)),
      ds_err_(ws.matrix<double>(ds_.rows(), s_)),
      abs_(ws.matrix<double>(s_, s_)),
      hi_(ws.matrix<double>(s_, s_)) {}

void AttentionReference::compute(const ConstMatrixRef& x, const ConstMatrixRef& dy) {
  x_ = x.cast<double>();
  x_abs_ = x_.cwiseAbs();
  const Block all_query = {0, N_}, all_kv = {0, K_};
  fill_qkv(w_, cfg_, LayerPart::weight, {0, H_}, all_query, all_kv);
  w_abs_ = w_.cwiseAbs();
  fill_block(wo_, master_wo(cfg_), cfg_.seed, 0, 0);
  wo_abs_ = wo_.cwiseAbs();
  b_.setZero();
  bo_.setZero();
  if (cfg_.bias) {
    fill_qkv(b_, cfg_, LayerPart::bias, {0, 1}, all_query, all_kv);
    fill_block(bo_, master_bo(cfg_), cfg_.seed, 0, 0);
  }
  forward_pass();
  if (dy_.rows() == 0) return;
  dy_ = dy.cast<double>();
  dy_abs_ = dy_.cwiseAbs();
  backward_pass();
}

void AttentionReference::cap(MatrixDRef bound, const ConstMatrixDRef& ref) const {
  if (ref.size() == 0) return;
  bound = bound.cwiseMin(mistake_ * ref.cwiseAbs().maxCoeff());
}

void AttentionReference::softmax_block(long b, long h) {
  const long r0 = b * s_, kv = h * K_ / N_, qc = h * d_, kc = (N_ + kv) * d_;
  auto q = qkv_.block(r0, qc, s_, d_), k = qkv_.block(r0, kc, s_, d_);
  p_.noalias() = q * k.transpose();  // the exact dots
  abs_.noalias() = qkv_abs_.block(r0, qc, s_, d_) * qkv_abs_.block(r0, kc, s_, d_).transpose();
  // The dots' error from their inputs' (ΔQ·hi_Kᵀ + |Q|·ΔKᵀ), and hi_Q·hi_Kᵀ = |Q||K|ᵀ + that.
  p_err_.noalias() = qkv_err_.block(r0, qc, s_, d_) * qkv_hi_.block(r0, kc, s_, d_).transpose();
  p_err_.noalias() += qkv_abs_.block(r0, qc, s_, d_) * qkv_err_.block(r0, kc, s_, d_).transpose();
  for (long i = 0; i < s_; ++i) {
    const long n = i + 1;  // token i sees tokens 0..i of its sequence
    auto score = p_.row(i).head(n);
    score *= scale_;
    const double max = score.maxCoeff();
    double spread = 0;  // Δ: every score of the row within it
    for (long j = 0; j < n; ++j) {
      const double dot_error = p_err_(i, j) + gamma_n(d_) * (abs_(i, j) + p_err_(i, j));
      spread = std::max(spread, scale_ * dot_error +
                                    4 * kFloatUnitRoundoff * (std::abs(score(j)) + std::abs(max)));
    }
    score = (score.array() - max).exp().matrix();
    score /= score.sum();
    const double rho = std::exp(2 * spread) * (1 + gamma_n(n + 10)) - 1;
    p_err_.row(i).head(n) = rho * score;
    p_hi_.row(i).head(n) = (1 + rho) * score;
    for (Tensor<double>* m : {&p_, &p_err_, &p_hi_}) m->row(i).tail(s_ - n).setZero();
  }
}

void AttentionReference::forward_pass() {
  const long nd = N_ * d_;
  qkv_.noalias() = x_ * w_;  // H products and the bias
  qkv_.rowwise() += b_.row(0);
  qkv_err_.noalias() = gamma_n(H_ + 1) * (x_abs_ * w_abs_);
  qkv_err_.rowwise() += gamma_n(H_ + 1) * b_.cwiseAbs().row(0);
  qkv_err_.array() += underflow(H_ + 1, lost_);
  qkv_abs_ = qkv_.cwiseAbs();
  const auto rotated = Block{0, nd + K_ * d_};  // Q's and K's columns, side by side
  rotate_bounds(qkv_err_.middleCols(rotated.first, rotated.count),
                qkv_abs_.middleCols(rotated.first, rotated.count), d_);
  exact_rope(qkv_.leftCols(nd), s_, d_, cfg_.rope_base());
  exact_rope(qkv_.middleCols(nd, K_ * d_), s_, d_, cfg_.rope_base());
  qkv_abs_ = qkv_.cwiseAbs();
  qkv_hi_ = qkv_abs_ + qkv_err_;
  for (long b = 0; b < cfg_.batch_size; ++b)
    for (long h = 0; h < N_; ++h) {
      const long r0 = b * s_, vc = (N_ + K_ + h * K_ / N_) * d_;
      softmax_block(b, h);
      o_.block(r0, h * d_, s_, d_).noalias() = p_ * qkv_.block(r0, vc, s_, d_);
      auto o_err = o_err_.block(r0, h * d_, s_, d_);
      o_err.noalias() = p_err_ * qkv_hi_.block(r0, vc, s_, d_);
      o_err.noalias() += p_ * qkv_err_.block(r0, vc, s_, d_);
      o_err.noalias() += gamma_n(s_) * (p_hi_ * qkv_hi_.block(r0, vc, s_, d_));
    }
  rounded_input(input_, o_, o_err_);  // O enters Wo's GEMM (and dWo's) as the model's type
  o_hi_ = o_.cwiseAbs() + o_err_;
  if (y_grid_.size() > 0)  // N heads' partial sums of N·d terms, on a grid of the row's max|O|
    y_grid_ = (double(N_) * kExactSumHalfStep * double(nd) * wo_abs_.maxCoeff()) *
              o_hi_.rowwise().maxCoeff();
  // Y = O·Wo + bo: N·d products, T partial sums (in bf16 with --reduce-dtype bf16), the bias;
  // then Y rounded to the model's type.
  const long n = nd + cfg_.tp_size + 1;
  y_.noalias() = o_ * wo_;
  y_.rowwise() += bo_.row(0);
  y_bound_.noalias() = o_err_ * wo_abs_;
  y_bound_.noalias() += (gamma_n(n) + reduce_) * (o_hi_ * wo_abs_);
  y_bound_.rowwise() += gamma_n(n) * bo_.cwiseAbs().row(0);
  y_bound_.array() += underflow(n, lost_);
  y_bound_ *= kSafety;
  rounded_input(input_, y_, y_bound_);
  cap(y_bound_, y_);
}

void AttentionReference::backward_pass() {
  const long nd = N_ * d_, T = cfg_.tp_size, group = N_ / K_;
  do_.noalias() = dy_ * wo_.transpose();  // dO = dY·Woᵀ, H products
  do_err_.noalias() = gamma_n(H_) * (dy_abs_ * wo_abs_.transpose());
  do_err_.array() += underflow(H_, lost_);
  do_abs_ = do_.cwiseAbs();
  do_hi_ = do_abs_ + do_err_;
  dqkv_.setZero();
  dqkv_err_.setZero();
  dqkv_hi_.setZero();
  // A KV head's gradient sums s tokens of each of its `group` query heads, and the replicas.
  const double g_kv = gamma_n(s_ * group + T);
  for (long b = 0; b < cfg_.batch_size; ++b)
    for (long h = 0; h < N_; ++h) {
      const long r0 = b * s_, kv = h * K_ / N_, qc = h * d_, kc = (N_ + kv) * d_,
                 vc = (N_ + K_ + kv) * d_;
      softmax_block(b, h);
      auto v = qkv_.block(r0, vc, s_, d_);
      ds_.noalias() = do_.block(r0, qc, s_, d_) * v.transpose();  // dP = dO·Vᵀ
      ds_err_.noalias() = do_err_.block(r0, qc, s_, d_) * qkv_hi_.block(r0, vc, s_, d_).transpose();
      ds_err_.noalias() +=
          do_abs_.block(r0, qc, s_, d_) * qkv_err_.block(r0, vc, s_, d_).transpose();
      hi_.noalias() = do_hi_.block(r0, qc, s_, d_) * qkv_hi_.block(r0, vc, s_, d_).transpose();
      ds_err_ += gamma_n(d_) * hi_;
      for (long i = 0; i < s_; ++i) {  // dS = P ⊙ (dP − D)/√d, D = Σ_j P_ij·dP_ij
        const long n = i + 1;
        const auto p = p_.row(i).head(n).array(), p_err = p_err_.row(i).head(n).array();
        const auto p_hi = p_hi_.row(i).head(n).array();
        auto dp = ds_.row(i).head(n).array();
        auto dp_err = ds_err_.row(i).head(n).array();
        const double row_sum = (p * dp).sum();
        const double row_sum_err = (p_err * dp.abs() + p_hi * dp_err).sum() +
                                   gamma_n(n) * (p_hi * (dp.abs() + dp_err)).sum();
        const auto diff = dp - row_sum;
        dp_err = scale_ * (p_err * diff.abs() + p_hi * (dp_err + row_sum_err)) +
                 4 * kFloatUnitRoundoff * scale_ * p_hi * (diff.abs() + dp_err + row_sum_err);
        dp = p * diff * scale_;
        ds_.row(i).tail(s_ - n).setZero();
        ds_err_.row(i).tail(s_ - n).setZero();
      }
      abs_ = ds_.cwiseAbs();
      hi_ = abs_ + ds_err_;
      // dQ_h = dS·K: s products
      const auto k = qkv_.block(r0, kc, s_, d_), k_hi = qkv_hi_.block(r0, kc, s_, d_);
      dqkv_.block(r0, qc, s_, d_).noalias() = ds_ * k;
      auto dq_err = dqkv_err_.block(r0, qc, s_, d_);
      dq_err.noalias() = ds_err_ * k_hi;
      dq_err.noalias() += abs_ * qkv_err_.block(r0, kc, s_, d_);
      dq_err.noalias() += gamma_n(s_) * (hi_ * k_hi);
      dqkv_hi_.block(r0, qc, s_, d_).noalias() = hi_ * k_hi;
      // dK_kv += dSᵀ·Q_h
      const auto q = qkv_.block(r0, qc, s_, d_), q_hi = qkv_hi_.block(r0, qc, s_, d_);
      dqkv_.block(r0, kc, s_, d_).noalias() += ds_.transpose() * q;
      auto dk_err = dqkv_err_.block(r0, kc, s_, d_);
      dk_err.noalias() += ds_err_.transpose() * q_hi;
      dk_err.noalias() += abs_.transpose() * qkv_err_.block(r0, qc, s_, d_);
      dk_err.noalias() += g_kv * (hi_.transpose() * q_hi);
      dqkv_hi_.block(r0, kc, s_, d_).noalias() += hi_.transpose() * q_hi;
      // dV_kv += Pᵀ·dO_h
      const auto d_o = do_.block(r0, qc, s_, d_), d_o_hi = do_hi_.block(r0, qc, s_, d_);
      dqkv_.block(r0, vc, s_, d_).noalias() += p_.transpose() * d_o;
      auto dv_err = dqkv_err_.block(r0, vc, s_, d_);
      dv_err.noalias() += p_err_.transpose() * d_o_hi;
      dv_err.noalias() += p_.transpose() * do_err_.block(r0, qc, s_, d_);
      dv_err.noalias() += g_kv * (p_hi_.transpose() * d_o_hi);
      dqkv_hi_.block(r0, vc, s_, d_).noalias() += p_hi_.transpose() * d_o_hi;
    }
  // RoPE's backward on dQ and dK; hi, the terms' magnitudes, bounds every rank's part of them.
  const Block rotated = {0, nd + K_ * d_};
  rotate_bounds(dqkv_err_.middleCols(rotated.first, rotated.count),
                dqkv_hi_.middleCols(rotated.first, rotated.count), d_);
  exact_rope_backward(dqkv_.leftCols(nd), s_, d_, cfg_.rope_base());
  exact_rope_backward(dqkv_.middleCols(nd, K_ * d_), s_, d_, cfg_.rope_base());
  if (cfg_.invariant) {
    // A KV head's dK and dV, summed exactly over its N/K query heads' parts, each part within
    // hi and rounded onto a grid of the row's largest part.
    auto kv = dqkv_err_.middleCols(nd, 2 * K_ * d_);
    const double parts = double(group);
    kv.colwise() += parts * kExactSumHalfStep * parts *
                    dqkv_hi_.middleCols(nd, 2 * K_ * d_).rowwise().maxCoeff();
  }
  dqkv_hi_ += dqkv_err_;
  if (dx_grid_.size() > 0)  // N + K partial sums of (N + 2K)·d terms, on the row's max|dQKV|
    dx_grid_ = (double(N_ + K_) * kExactSumHalfStep * double(width_) * w_abs_.maxCoeff()) *
               dqkv_hi_.rowwise().maxCoeff();
  // db = Σ dQKV over the tokens, from the float dQKV, and the replicas' T partial sums.
  const long n_dw = t_ + T;
  db_ = dqkv_.colwise().sum();
  db_bound_ = dqkv_err_.colwise().sum() + gamma_n(n_dw) * dqkv_hi_.colwise().sum();
  db_bound_.array() += underflow(n_dw, lost_);
  db_bound_ *= kSafety;
  // dQKV enters dX's and dW's GEMMs as the model's type: rounded, within input_ of its float
  // value, itself within hi.
  dqkv_err_ += input_ * dqkv_hi_;
  dqkv_hi_ *= 1 + input_;
  // dX = dQKV·Wᵀ: every rank's columns, its KV heads' counted once per holder, and T partials;
  // then dX rounded to the model's type.
  const HeadSharding sharding(N_, K_, int(T));
  const long n_dx = (N_ + 2 * sharding.kv_heads_held()) * d_ + T;
  dx_.noalias() = dqkv_ * w_.transpose();
  dx_bound_.noalias() = dqkv_err_ * w_abs_.transpose();
  dx_bound_.noalias() += (gamma_n(n_dx) + reduce_) * (dqkv_hi_ * w_abs_.transpose());
  dx_bound_.array() += underflow(n_dx, lost_);
  dx_bound_ *= kSafety;
  rounded_input(input_, dx_, dx_bound_);
  // dW = Xᵀ·dQKV, and the replicas' T partial sums.
  dw_.noalias() = x_.transpose() * dqkv_;
  dw_bound_.noalias() = x_abs_.transpose() * dqkv_err_;
  dw_bound_.noalias() += gamma_n(n_dw) * (x_abs_.transpose() * dqkv_hi_);
  dw_bound_.array() += underflow(n_dw, lost_);
  dw_bound_ *= kSafety;
  // dWo = Oᵀ·dY, dbo = Σ dY: the tokens' products.
  dwo_.noalias() = o_.transpose() * dy_;
  dwo_bound_.noalias() = o_err_.transpose() * dy_abs_;
  dwo_bound_.noalias() += gamma_n(t_) * (o_hi_.transpose() * dy_abs_);
  dwo_bound_.array() += underflow(t_, lost_);
  dwo_bound_ *= kSafety;
  dbo_ = dy_.colwise().sum();
  dbo_bound_ = gamma_n(t_) * dy_abs_.colwise().sum();
  dbo_bound_.array() += underflow(t_, lost_);
  dbo_bound_ *= kSafety;
  cap(dx_bound_, dx_);
  // Each of dWq, dWk, dWv (and their biases) against its own scale.
  for (const Block columns :
       {Block{0, N_ * d_}, Block{N_ * d_, K_ * d_}, Block{(N_ + K_) * d_, K_ * d_}}) {
    cap(dw_bound_.middleCols(columns.first, columns.count),
        dw_.middleCols(columns.first, columns.count));
    cap(db_bound_.middleCols(columns.first, columns.count),
        db_.middleCols(columns.first, columns.count));
  }
  cap(dwo_bound_, dwo_);
  cap(dbo_bound_, dbo_);
}

// The scheme holds the token rows `held`: every one, or under sequence parallelism its block.
Verification AttentionReference::verify_output(Scheme scheme, const ConstMatrixRef& y, Block held,
                                               const World& world) const {
  Agreement a;
  a.add(y, y_.middleRows(held.first, held.count), y_bound_.middleRows(held.first, held.count),
        is_invariant(scheme) && y_grid_.size() > 0 ? y_grid_.data() + held.first : nullptr);
  return conclude("Y", a, H_ + d_ + s_ + N_ * d_, world);  // QKV, QKᵀ, P·V, ·Wo
}

std::vector<Verification> AttentionReference::verify_gradients(
    Scheme scheme, const ConstMatrixRef& dx, Block held, MlpScheme* computed, const ConstMatrixRef&,
    const ConstMatrixRef&, const World& world) {
  std::optional<Gradients> shard;
  if (computed) shard = computed->gradients();
  return verify_shard(scheme, dx, held, shard, world);
}

std::vector<Verification> AttentionReference::verify_shard(Scheme scheme, const ConstMatrixRef& dx,
                                                           Block held,
                                                           const std::optional<Gradients>& shard,
                                                           const World& world) {
  Agreement a_dx, a_w[3], a_wo, a_b[3], a_bo;
  a_dx.add(dx, dx_.middleRows(held.first, held.count), dx_bound_.middleRows(held.first, held.count),
           is_invariant(scheme) && dx_grid_.size() > 0 ? dx_grid_.data() + held.first : nullptr);
  if (shard && shard->columns.count > 0) {
    const FusedColumns at = fused_qkv_columns(shard->columns, N_, K_, d_);
    for (int j = 0; j < 3; ++j) {
      const Block here = at.here[j], master = at.master[j];
      a_w[j].add(shard->w_in->middleCols(here.first, here.count),
                 dw_.middleCols(master.first, master.count),
                 dw_bound_.middleCols(master.first, master.count));
      if (shard->b_in)
        a_b[j].add(shard->b_in->middleCols(here.first, here.count),
                   db_.middleCols(master.first, master.count),
                   db_bound_.middleCols(master.first, master.count));
    }
    const Block rows = at.master[0];
    a_wo.add(*shard->w_out, dwo_.middleRows(rows.first, rows.count),
             dwo_bound_.middleRows(rows.first, rows.count));
  }
  if (shard && shard->b_out) a_bo.add(*shard->b_out, dbo_, dbo_bound_);
  // The longest paths: dO (H), dP or dS (d, s), dQ/dK/dV (s·N/K), RoPE, then dX's or the
  // weights' sum.
  const long upstream = H_ + d_ + s_ * (N_ / K_);
  std::vector<Verification> checks = {
      conclude("dX", a_dx, upstream + (N_ + 2 * K_) * d_, world),
      conclude("dWq", a_w[0], upstream + t_, world), conclude("dWk", a_w[1], upstream + t_, world),
      conclude("dWv", a_w[2], upstream + t_, world), conclude("dWo", a_wo, H_ + t_, world)};
  if (cfg_.bias) {
    checks.push_back(conclude("dbq", a_b[0], upstream + t_, world));
    checks.push_back(conclude("dbk", a_b[1], upstream + t_, world));
    checks.push_back(conclude("dbv", a_b[2], upstream + t_, world));
    checks.push_back(conclude("dbo", a_bo, t_, world));
  }
  return checks;
}

}  // namespace tp_mlp
