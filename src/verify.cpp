// verify: the blocked double-precision reference, its error bounds, and the comparisons
// (see verify.hpp and rounding.hpp). Every product and bound is written into the reference's
// own buffers, a block at a time.
#include "tp_mlp/verify.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "tp_mlp/agreement.hpp"
#include "tp_mlp/bf16.hpp"
#include "tp_mlp/exact_sum.hpp"
#include "tp_mlp/init.hpp"
#include "tp_mlp/invariant_blocking.hpp"
#include "tp_mlp/rounding.hpp"

namespace tp_mlp {
namespace {

// The reference walks F in blocks half a shard wide.
long block_width(const Config& cfg) {
  return std::max(1L, (block_of(cfg.intermediate_size(), cfg.tp_size, 0).count + 1) / 2);
}

// Calls visit(cols) for blocks covering `span` of F.
template <typename Visit>
void for_each_block(long width, Block span, Visit visit) {
  for (long col = span.first; col < span.end(); col += width)
    visit(Block{col, std::min(width, span.end() - col)});
}

// What a float sum of n terms, each within `error` of `terms`, may differ from the exact
// sum by, as the matrix the sum is then multiplied into: Σ error + γ_n·Σ(|terms| + error).
void summand_bound(const ConstMatrixDRef& terms, const ConstMatrixDRef& error, long n,
                   MatrixDRef bound) {
  bound = (1 + gamma_n(n)) * error + gamma_n(n) * terms.cwiseAbs();
}

// A pass runs over the reference's rows, or, for the weight gradients, over every token.
long pass_rows(const Config& cfg, Block rows) {
  return cfg.backward ? std::max(rows.count, cfg.tokens()) : rows.count;
}

}  // namespace

Reference::Reference(Workspace& ws, const Config& cfg, Block rows)
    : cfg_(cfg),
      rows_(rows),
      block_width_(block_width(cfg)),
      input_(input_roundoff(cfg)),
      output_(input_),
      reduce_(bf16_reduction(cfg)),
      underflow_factor_(underflow_factor(cfg)),
      naive_bf16_pre_(reduce_ > 0 && cfg.runs(Scheme::naive)),
      H_(cfg.hidden_size),
      pw_(cfg.projections() * block_width_),
      n_(rows.count),
      dx_rows_(cfg.backward ? rows.count : 0),
      all_(pass_rows(cfg, rows)),
      dy_rows_(cfg.backward ? all_ : 0),
      y_(ws.matrix<double>(n_, H_)),
      y_bound_(ws.matrix<double>(n_, H_)),
      dx_(ws.matrix<double>(dx_rows_, H_)),
      dx_bound_(ws.matrix<double>(dx_rows_, H_)),
      y_bound_naive_(ws.matrix<double>(naive_bf16_pre_ ? n_ : 0, H_)),
      y_partials_(ws.matrix<double>(reduce_ > 0 ? n_ : 0, H_)),
      dx_partials_(ws.matrix<double>(reduce_ > 0 ? dx_rows_ : 0, H_)),
      naive_partials_(ws.matrix<double>(naive_bf16_pre_ ? n_ : 0, H_)),
      x_(ws.matrix<double>(all_, H_)),
      x_abs_(ws.matrix<double>(all_, H_)),
      dy_(ws.matrix<double>(dy_rows_, H_)),
      dy_abs_(ws.matrix<double>(dy_rows_, H_)),
      w_in_(ws.matrix<double>(H_, pw_)),
      w_in_abs_(ws.matrix<double>(H_, pw_)),
      b_in_(ws.matrix<double>(1, pw_)),
      w2_(ws.matrix<double>(block_width_, H_)),
      w2_abs_(ws.matrix<double>(block_width_, H_)),
      pre_(ws.matrix<double>(all_, pw_)),
      pre_error_(ws.matrix<double>(all_, pw_)),
      magnitude_(ws.matrix<double>(all_, pw_)),
      act_(ws.matrix<double>(all_, block_width_)),
      act_error_(ws.matrix<double>(all_, block_width_)),
      act_in_error_(ws.matrix<double>(all_, block_width_)),
      dact_(ws.matrix<double>(dy_rows_, block_width_)),
      dact_error_(ws.matrix<double>(dy_rows_, block_width_)),
      dpre_(ws.matrix<double>(dy_rows_, pw_)),
      dpre_error_(ws.matrix<double>(dy_rows_, pw_)),
      dpre_in_error_(ws.matrix<double>(dy_rows_, pw_)),
      terms_(ws.matrix<double>(all_, pw_)),
      naive_act_error_(ws.matrix<double>(naive_bf16_pre_ ? n_ : 0, block_width_)),
      dw2_(ws.matrix<double>(cfg.backward ? block_width_ : 0, H_)),
      dw2_bound_(ws.matrix<double>(dw2_.rows(), H_)),
      dw_in_(ws.matrix<double>(cfg.backward ? H_ : 0, block_width_)),
      dw_in_bound_(ws.matrix<double>(dw_in_.rows(), block_width_)),
      y_grid_(ws.matrix<double>(cfg.invariant ? n_ : 0, 1)),
      dx_grid_(ws.matrix<double>(cfg.invariant ? dx_rows_ : 0, 1)) {}

void Reference::regenerate(Block cols) {
  const long H = cfg_.hidden_size, pw = cfg_.projections() * cols.count, w = cols.count;
  auto w_in = w_in_.leftCols(pw);
  auto b_in = b_in_.leftCols(pw);
  auto w2 = w2_.topRows(w);
  fill_first_layer(w_in, cfg_, LayerPart::weight, {0, H}, cols);
  b_in.setZero();
  if (cfg_.bias) fill_first_layer(b_in, cfg_, LayerPart::bias, {0, 1}, cols);
  fill_block(w2, master_w2(cfg_), cfg_.seed, cols.first, 0);
  w_in_abs_.leftCols(pw) = w_in.cwiseAbs();
  w2_abs_.topRows(w) = w2.cwiseAbs();
}

void Reference::run_block(long n, Block cols) {
  const long H = cfg_.hidden_size, w = cols.count, pw = cfg_.projections() * w;
  const double lost = underflow_factor_;
  const auto x = x_.topRows(n), x_abs = x_abs_.topRows(n);
  const auto w_in = w_in_.leftCols(pw), w_in_abs = w_in_abs_.leftCols(pw);
  auto pre = pre_.topLeftCorner(n, pw), pre_error = pre_error_.topLeftCorner(n, pw);
  auto magnitude = magnitude_.topLeftCorner(n, pw);
  pre.noalias() = x * w_in;  // H products and the bias
  pre.rowwise() += b_in_.leftCols(pw).row(0);
  magnitude.noalias() = x_abs * w_in_abs;  // |X|·|W_in|
  pre_error = gamma_n(H + 1) * (magnitude.rowwise() + b_in_.leftCols(pw).cwiseAbs().row(0));
  pre_error.array() += lost * underflow(H + 1);
  auto act = act_.topLeftCorner(n, w), act_error = act_error_.topLeftCorner(n, w);
  auto act_in_error = act_in_error_.topLeftCorner(n, w);
  exact_activate(cfg_.activation, pre, act);
  activation_error(cfg_.activation, pre, pre_error, act_error);
  act_in_error = act_error;
  rounded_input(input_, act, act_in_error);
  if (dy_.rows() == 0) return;
  auto dact = dact_.topLeftCorner(n, w), dact_error = dact_error_.topLeftCorner(n, w);
  dact.noalias() = dy_.topRows(n) * w2_.topRows(w).transpose();  // H products
  dact_error.noalias() = gamma_n(H) * dy_abs_.topRows(n) * w2_abs_.topRows(w).transpose();
  dact_error.array() += lost * underflow(H);
  auto dpre = dpre_.topLeftCorner(n, pw), dpre_error = dpre_error_.topLeftCorner(n, pw);
  auto dpre_in_error = dpre_in_error_.topLeftCorner(n, pw);
  exact_activate_backward(cfg_.activation, pre, dact, dpre);
  activation_backward_error(cfg_.activation, pre, pre_error, dact, dact_error, dpre_error);
  dpre_in_error = dpre_error;
  rounded_input(input_, dpre, dpre_in_error);
}

void Reference::compute(const ConstMatrixRef& x, const ConstMatrixRef& dy) {
  const long F = cfg_.intermediate_size(), p = cfg_.projections(), n = rows_.count;
  const bool backward = dy_.rows() > 0;
  x_.topRows(n) = x.middleRows(rows_.first, n).cast<double>();  // [rows, H]
  x_abs_.topRows(n) = x_.topRows(n).cwiseAbs();
  if (backward) {
    dy_.topRows(n) = dy.middleRows(rows_.first, n).cast<double>();
    dy_abs_.topRows(n) = dy_.topRows(n).cwiseAbs();
  }
  for (Tensor<double>* sum : {&y_, &y_bound_, &dx_, &dx_bound_, &y_bound_naive_, &y_partials_,
                              &dx_partials_, &naive_partials_, &y_grid_, &dx_grid_})
    sum->setZero();
  double w2_max = 0, w_in_max = 0;  // over the whole model, for the invariant schemes' grids
  for_each_block(block_width_, {0, F}, [&](Block cols) {
    const long w = cols.count, pw = p * w;
    regenerate(cols);
    run_block(n, cols);
    const auto w2 = w2_.topRows(w), w2_abs = w2_abs_.topRows(w);
    const auto act = act_.topLeftCorner(n, w), act_in_error = act_in_error_.topLeftCorner(n, w);
    auto terms = terms_.topLeftCorner(n, w);
    y_.noalias() += act * w2;  // F products and the bias, over all blocks
    if (y_grid_.size() > 0) {  // each row's largest activation (the float one's, at most)
      y_grid_ = y_grid_.cwiseMax((act.cwiseAbs() + act_in_error).rowwise().maxCoeff());
      w2_max = std::max(w2_max, w2_abs.maxCoeff());
    }
    summand_bound(act, act_in_error, F + 1, terms);
    y_bound_.noalias() += terms * w2_abs;
    if (reduce_ > 0) {
      terms = act.cwiseAbs() + act_in_error;
      y_partials_.noalias() += terms * w2_abs;
    }
    if (naive_bf16_pre_) {  // the same, from a pre-activation summed in bf16
      auto pre_error = terms_.topLeftCorner(n, pw);
      pre_error = pre_error_.topLeftCorner(n, pw) + reduce_ * magnitude_.topLeftCorner(n, pw);
      auto act_error = naive_act_error_.leftCols(w);
      activation_error(cfg_.activation, pre_.topLeftCorner(n, pw), pre_error, act_error);
      rounded_input(input_, act, act_error);
      auto naive_terms = terms_.topLeftCorner(n, w);
      summand_bound(act, act_error, F + 1, naive_terms);
      y_bound_naive_.noalias() += naive_terms * w2_abs;
      naive_terms = act.cwiseAbs() + act_error;
      naive_partials_.noalias() += naive_terms * w2_abs;
    }
    if (!backward) return;
    const auto dpre = dpre_.topLeftCorner(n, pw), w_in = w_in_.leftCols(pw);
    auto dpre_terms = terms_.topLeftCorner(n, pw);
    dx_.noalias() += dpre * w_in.transpose();  // p·F products
    if (dx_grid_.size() > 0) {
      dx_grid_ = dx_grid_.cwiseMax(
          (dpre.cwiseAbs() + dpre_error_.topLeftCorner(n, pw)).rowwise().maxCoeff());
      w_in_max = std::max(w_in_max, w_in_abs_.leftCols(pw).maxCoeff());
    }
    summand_bound(dpre, dpre_in_error_.topLeftCorner(n, pw), p * F, dpre_terms);
    dx_bound_.noalias() += dpre_terms * w_in_abs_.leftCols(pw).transpose();
    if (reduce_ > 0) {
      dpre_terms = dpre.cwiseAbs() + dpre_in_error_.topLeftCorner(n, pw);
      dx_partials_.noalias() += dpre_terms * w_in_abs_.leftCols(pw).transpose();
    }
  });
  const double lost = underflow_factor_;
  y_bound_ += reduce_ * y_partials_;
  y_bound_.array() += lost * underflow(F + 1);
  y_bound_naive_ += reduce_ * naive_partials_;
  y_bound_naive_.array() += lost * underflow(F + 1);
  dx_bound_ += reduce_ * dx_partials_;
  dx_bound_.array() += lost * underflow(p * F);
  if (cfg_.bias) {
    auto b2 = w2_.topRows(1);  // the block's W2 is done with: b2 [1, H] in its place
    fill_block(b2, master_b2(cfg_), cfg_.seed, 0, 0);
    y_.rowwise() += b2.row(0);
    y_bound_.rowwise() += gamma_n(F + 1) * b2.cwiseAbs().row(0);
    if (naive_bf16_pre_) y_bound_naive_.rowwise() += gamma_n(F + 1) * b2.cwiseAbs().row(0);
  }
  // An invariant scheme rounds each of the blocks' partial sums onto its exact sum's grid,
  // whose step is under 2^-48 of terms · max|input| · max|weight| for the row (exact_sum.hpp):
  // at most half a step per block.
  const double blocks = double(InvariantBlocking::of(cfg_).blocks);
  y_grid_ *= blocks * kExactSumHalfStep * double(F) * w2_max;
  dx_grid_ *= blocks * kExactSumHalfStep * double(p * F) * w_in_max;
  // Y and dX are rounded to the model's element type at the end.
  y_bound_ = (1 + output_) * y_bound_ + output_ * y_.cwiseAbs();
  if (naive_bf16_pre_) y_bound_naive_ = (1 + output_) * y_bound_naive_ + output_ * y_.cwiseAbs();
  dx_bound_ = (1 + output_) * dx_bound_ + output_ * dx_.cwiseAbs();
}

Verification Reference::verify_output(Scheme scheme, const ConstMatrixRef& y, Block held,
                                      const World& world) const {
  Agreement a;
  const bool own_bound = scheme == Scheme::naive && y_bound_naive_.size() > 0;
  a.add(y.middleRows(rows_.first - held.first, rows_.count), y_,
        own_bound ? y_bound_naive_ : y_bound_, is_invariant(scheme) ? y_grid_.data() : nullptr);
  return conclude("Y", a, cfg_.hidden_size + cfg_.intermediate_size(), world);  // X·W1, ·W2
}

std::vector<Verification> Reference::verify_gradients(Scheme scheme, const ConstMatrixRef& dx,
                                                      Block held, MlpScheme* computed,
                                                      const ConstMatrixRef& x,
                                                      const ConstMatrixRef& dy,
                                                      const World& world) {
  std::optional<Gradients> shard;
  if (computed) shard = computed->gradients();
  return verify_shard(scheme, dx, held, shard, x, dy, world);
}

std::vector<Verification> Reference::verify_shard(Scheme scheme, const ConstMatrixRef& dx,
                                                  Block held, const std::optional<Gradients>& shard,
                                                  const ConstMatrixRef& x, const ConstMatrixRef& dy,
                                                  const World& world) {
  const long H = cfg_.hidden_size, tokens = cfg_.tokens(), p = cfg_.projections();
  const bool swiglu = cfg_.activation == Activation::swiglu;
  Agreement a_dx, a_dw_in[2], a_dw2, a_db_in[2], a_db2;
  a_dx.add(dx.middleRows(rows_.first - held.first, rows_.count), dx_, dx_bound_,
           is_invariant(scheme) ? dx_grid_.data() : nullptr);
  if (shard) {
    // Weight gradients sum over every token, so this rank needs all of X and dY.
    x_.topRows(tokens) = x.cast<double>();
    x_abs_.topRows(tokens) = x_.topRows(tokens).cwiseAbs();
    dy_.topRows(tokens) = dy.cast<double>();
    dy_abs_.topRows(tokens) = dy_.topRows(tokens).cwiseAbs();
    const auto x_all = x_.topRows(tokens), x_abs = x_abs_.topRows(tokens);
    const auto dy_all = dy_.topRows(tokens), dy_abs = dy_abs_.topRows(tokens);
    const double lost = underflow_factor_ * underflow(tokens);
    const Block mine = shard->columns;
    for_each_block(block_width_, mine, [&](Block cols) {
      const long at = cols.first - mine.first, w = cols.count, pw = p * w;  // within the shard
      regenerate(cols);
      run_block(tokens, cols);
      const auto act = act_.topLeftCorner(tokens, w);
      auto terms = terms_.topLeftCorner(tokens, pw);
      auto dw2 = dw2_.topRows(w), dw2_bound = dw2_bound_.topRows(w);
      dw2.noalias() = act.transpose() * dy_all;  // [w, H], tokens products
      summand_bound(act, act_in_error_.topLeftCorner(tokens, w), tokens, terms.leftCols(w));
      dw2_bound.noalias() = terms.leftCols(w).transpose() * dy_abs;
      dw2_bound.array() += lost;
      a_dw2.add(shard->w_out->middleRows(at, w), dw2, dw2_bound);
      // dW_in sums the bf16-rounded dpre's products over the tokens; db_in the fp32 dpre.
      const auto dpre = dpre_.topLeftCorner(tokens, pw);
      summand_bound(dpre, dpre_in_error_.topLeftCorner(tokens, pw), tokens, terms);
      for (long j = 0; j < p; ++j) {  // W1's columns, then W3's, in both layouts
        auto dw_in = dw_in_.leftCols(w), dw_in_bound = dw_in_bound_.leftCols(w);
        dw_in.noalias() = x_all.transpose() * dpre.middleCols(j * w, w);
        dw_in_bound.noalias() = x_abs.transpose() * terms.middleCols(j * w, w);
        dw_in_bound.array() += lost;
        a_dw_in[j].add(shard->w_in->middleCols(j * mine.count + at, w), dw_in, dw_in_bound);
      }
      if (!cfg_.bias) return;
      summand_bound(dpre, dpre_error_.topLeftCorner(tokens, pw), tokens, terms);
      for (long j = 0; j < p; ++j) {
        auto db_in = dw_in_.topLeftCorner(1, w), db_in_bound = dw_in_bound_.topLeftCorner(1, w);
        db_in = dpre.middleCols(j * w, w).colwise().sum();
        db_in_bound = terms.middleCols(j * w, w).colwise().sum();
        db_in_bound.array() += underflow(tokens);
        a_db_in[j].add(shard->b_in->middleCols(j * mine.count + at, w), db_in, db_in_bound);
      }
    });
    if (cfg_.bias) {
      auto db2 = dw2_.topRows(1), db2_bound = dw2_bound_.topRows(1);
      db2 = dy_all.colwise().sum();
      db2_bound = gamma_n(tokens) * dy_abs.colwise().sum();
      db2_bound.array() += underflow(tokens);
      a_db2.add(*shard->b_out, db2, db2_bound);
    }
  }
  // Terms along the longest path to each element: H for the pre-activation, H for dact,
  // then the final sum: p·F for dX, the tokens for the weight and bias gradients.
  std::vector<Verification> checks = {
      conclude("dX", a_dx, 2 * H + p * cfg_.intermediate_size(), world),
      conclude("dW1", a_dw_in[0], 2 * H + tokens, world)};
  if (swiglu) checks.push_back(conclude("dW3", a_dw_in[1], 2 * H + tokens, world));
  checks.push_back(conclude("dW2", a_dw2, H + tokens, world));
  if (cfg_.bias) {
    checks.push_back(conclude("db1", a_db_in[0], 2 * H + tokens, world));
    if (swiglu) checks.push_back(conclude("db3", a_db_in[1], 2 * H + tokens, world));
    checks.push_back(conclude("db2", a_db2, tokens, world));
  }
  return checks;
}

}  // namespace tp_mlp
