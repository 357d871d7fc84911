// verify: the blocked double-precision reference, its error bounds, and the comparisons
// (see verify.hpp and rounding.hpp).
#include "tp_mlp/verify.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "tp_mlp/init.hpp"
#include "tp_mlp/rounding.hpp"

namespace tp_mlp {
namespace {

// A float sum of n terms may also lose what underflows below the smallest normal float (bf16
// dot products flush denormal products and sums alike: twice as much).
double underflow(long terms) { return double(terms) * double(std::numeric_limits<float>::min()); }

// What the model rounds beyond its fp32 sums, by its element type and reduce dtype.
struct Precision {
  double input = 0;   // the activation and its gradient rounded to bf16 before their GEMMs
  double output = 0;  // Y and dX rounded to the element type
  double reduce = 0;  // T partial sums rounded to bf16 and added in bf16: every addition rounds
  double underflow_factor = 1;
  bool naive_bf16_pre = false;  // naive's pre-activation is reduced in bf16 too: its own bound
  explicit Precision(const Config& cfg) {
    if (cfg.dtype == DType::bf16) {
      input = output = kBf16UnitRoundoff;
      underflow_factor = 2;
    }
    if (cfg.reduction() != DType::bf16) return;
    // A partial rounded once, then T − 1 additions each rounded to float and then to bf16.
    const double per_step = kBf16UnitRoundoff + kFloatUnitRoundoff * (1 + kBf16UnitRoundoff);
    const double steps = double(cfg.tp_size) * per_step;
    reduce = steps / (1 - steps);
    const std::vector<Scheme> schemes = cfg.schemes();
    naive_bf16_pre = std::find(schemes.begin(), schemes.end(), Scheme::naive) != schemes.end();
  }
  // A value within `error` of `exact`, rounded to a GEMM input.
  MatrixD rounded_input(const MatrixD& exact, const MatrixD& error) const {
    return (1 + input) * error + input * exact.cwiseAbs();
  }
};

// Columns `cols` of F, of every projection of the first layer side by side, and the same rows
// of W2, from the generator, with their magnitudes.
struct ReferenceBlock {
  MatrixD w_in, w_in_abs;  // [H, p·width]
  MatrixD b_in;            // [1, p·width], zeros without bias
  MatrixD w2, w2_abs;      // [width, H]
  ReferenceBlock(const Config& cfg, Block cols)
      : w_in(cfg.hidden_size, cfg.projections() * cols.count),
        b_in(MatrixD::Zero(1, cfg.projections() * cols.count)),
        w2(cols.count, cfg.hidden_size) {
    fill_first_layer(w_in, cfg, LayerPart::weight, {0, cfg.hidden_size}, cols);
    if (cfg.bias) fill_first_layer(b_in, cfg, LayerPart::bias, {0, 1}, cols);
    fill_block(w2, master_w2(cfg), cfg.seed, cols.first, 0);
    w_in_abs = w_in.cwiseAbs();
    w2_abs = w2.cwiseAbs();
  }
};

// One block of the forward (and backward) pass for some token rows, with error bounds.
struct BlockPass {
  MatrixD pre, pre_error;               // [rows, p·width]
  MatrixD act, act_error;               // [rows, width]
  MatrixD dpre, dpre_error;             // [rows, p·width], with dY
  MatrixD act_in_error, dpre_in_error;  // as the next GEMMs read them (rounded to bf16)
  MatrixD magnitude;                    // |X|·|W_in| [rows, p·width]
  BlockPass(const Config& cfg, const Precision& precision, const ReferenceBlock& b,
            const MatrixD& x, const MatrixD& x_abs, const MatrixD& dy, const MatrixD& dy_abs) {
    const long H = cfg.hidden_size;
    const double lost = precision.underflow_factor;
    pre = (x * b.w_in).rowwise() + b.b_in.row(0);  // H products and the bias
    magnitude = x_abs * b.w_in_abs;
    pre_error = gamma_n(H + 1) * (magnitude.rowwise() + b.b_in.cwiseAbs().row(0));
    pre_error.array() += lost * underflow(H + 1);
    act = exact_activate(cfg.activation, pre);
    act_error = activation_error(cfg.activation, pre, pre_error);
    act_in_error = precision.rounded_input(act, act_error);
    if (dy.size() == 0) return;
    const MatrixD dact = dy * b.w2.transpose();  // [rows, width], H products
    MatrixD dact_error = gamma_n(H) * dy_abs * b.w2_abs.transpose();
    dact_error.array() += lost * underflow(H);
    dpre = exact_activate_backward(cfg.activation, pre, dact);
    dpre_error = activation_backward_error(cfg.activation, pre, pre_error, dact, dact_error);
    dpre_in_error = precision.rounded_input(dpre, dpre_error);
  }
};

// What a float sum of n terms, each within `error` of `terms`, may differ from the exact
// sum by, as the matrix the sum is then multiplied into: Σ error + γ_n·Σ(|terms| + error).
MatrixD summand_bound(const MatrixD& terms, const MatrixD& error, long n) {
  return (1 + gamma_n(n)) * error + gamma_n(n) * terms.cwiseAbs();
}

long block_width(const Config& cfg) {
  return std::max(1L, (block_of(cfg.intermediate_size(), cfg.tp_size, 0).count + 1) / 2);
}

// Calls visit(cols) for blocks covering `span` of F.
template <typename Visit>
void for_each_block(const Config& cfg, Block span, Visit visit) {
  const long width = block_width(cfg);
  for (long col = span.first; col < span.end(); col += width)
    visit(Block{col, std::min(width, span.end() - col)});
}

// How one tensor on one rank compares with the reference.
struct Agreement {
  double diff = 0, scale = 0, bound = 0, worst = 0;
  template <typename Got>
  void add(const Got& got, const MatrixD& ref, const MatrixD& ref_bound) {
    if (ref.size() == 0) return;
    const MatrixD error = (got.template cast<double>() - ref).cwiseAbs();
    if (!error.allFinite()) worst = std::numeric_limits<double>::infinity();
    diff = std::max(diff, error.maxCoeff());
    scale = std::max(scale, ref.cwiseAbs().maxCoeff());
    bound = std::max(bound, ref_bound.maxCoeff());
    // An element whose bound is 0 must be exact: 0/0 passes, anything else fails.
    const MatrixD ratio =
        error.binaryExpr(ref_bound, [](double e, double b) { return e == 0 ? 0.0 : e / b; });
    worst = std::max(worst, ratio.maxCoeff());
  }
};

Verification conclude(const std::string& tensor, const Agreement& local, long terms,
                      const World& world) {
  Verification v;
  v.tensor = tensor;
  v.max_abs_diff = world.max(local.diff);
  const double scale = world.max(local.scale);
  v.max_rel_diff = v.max_abs_diff / scale;
  v.tolerance = world.max(local.bound) / scale;
  v.max_diff_over_bound = world.max(local.worst);
  v.accumulated_terms = terms;
  v.passed = v.max_diff_over_bound <= 1;  // false for NaN too
  return v;
}

}  // namespace

ReferenceRows reference_rows(const Config& cfg, const Matrix& x, const Matrix& dy, Block rows) {
  const long H = cfg.hidden_size, F = cfg.intermediate_size(), p = cfg.projections();
  const Precision precision(cfg);
  const bool backward = dy.size() > 0;
  const long dx_rows = backward ? rows.count : 0;
  ReferenceRows ref{rows,
                    MatrixD::Zero(rows.count, H),
                    MatrixD::Zero(rows.count, H),
                    MatrixD::Zero(dx_rows, H),
                    MatrixD::Zero(dx_rows, H),
                    MatrixD()};
  const MatrixD x_rows = x.middleRows(rows.first, rows.count).cast<double>();  // [rows, H]
  const MatrixD dy_rows =
      backward ? MatrixD(dy.middleRows(rows.first, rows.count).cast<double>()) : MatrixD();
  const MatrixD x_abs = x_rows.cwiseAbs(), dy_abs = dy_rows.cwiseAbs();
  // Σ over all of F of what the ranks' partial sums add up in magnitude: what a bf16
  // reduction's roundings scale with.
  MatrixD y_partials = MatrixD::Zero(rows.count, H), dx_partials = MatrixD::Zero(dx_rows, H);
  const long naive_rows = precision.naive_bf16_pre ? rows.count : 0;
  MatrixD naive_partials = MatrixD::Zero(naive_rows, H);
  ref.y_bound_naive = MatrixD::Zero(naive_rows, H);
  for_each_block(cfg, {0, F}, [&](Block cols) {
    const ReferenceBlock b(cfg, cols);
    const BlockPass pass(cfg, precision, b, x_rows, x_abs, dy_rows, dy_abs);
    ref.y.noalias() += pass.act * b.w2;  // F products and the bias, over all blocks
    ref.y_bound.noalias() += summand_bound(pass.act, pass.act_in_error, F + 1) * b.w2_abs;
    if (precision.reduce > 0)
      y_partials.noalias() += (pass.act.cwiseAbs() + pass.act_in_error) * b.w2_abs;
    if (precision.naive_bf16_pre) {  // the same, from a pre-activation summed in bf16
      const MatrixD pre_error = pass.pre_error + precision.reduce * pass.magnitude;
      const MatrixD act_in_error =
          precision.rounded_input(pass.act, activation_error(cfg.activation, pass.pre, pre_error));
      ref.y_bound_naive.noalias() += summand_bound(pass.act, act_in_error, F + 1) * b.w2_abs;
      naive_partials.noalias() += (pass.act.cwiseAbs() + act_in_error) * b.w2_abs;
    }
    if (!backward) return;
    ref.dx.noalias() += pass.dpre * b.w_in.transpose();  // p·F products
    ref.dx_bound.noalias() +=
        summand_bound(pass.dpre, pass.dpre_in_error, p * F) * b.w_in_abs.transpose();
    if (precision.reduce > 0)
      dx_partials.noalias() += (pass.dpre.cwiseAbs() + pass.dpre_in_error) * b.w_in_abs.transpose();
  });
  const double lost = precision.underflow_factor;
  ref.y_bound += precision.reduce * y_partials;
  ref.y_bound.array() += lost * underflow(F + 1);
  ref.y_bound_naive += precision.reduce * naive_partials;
  ref.y_bound_naive.array() += lost * underflow(F + 1);
  ref.dx_bound += precision.reduce * dx_partials;
  ref.dx_bound.array() += lost * underflow(p * F);
  if (cfg.bias) {
    MatrixD b2(1, H);
    fill_block(b2, master_b2(cfg), cfg.seed, 0, 0);
    ref.y.rowwise() += b2.row(0);
    ref.y_bound.rowwise() += gamma_n(F + 1) * b2.cwiseAbs().row(0);
    if (naive_rows) ref.y_bound_naive.rowwise() += gamma_n(F + 1) * b2.cwiseAbs().row(0);
  }
  // Y and dX are rounded to the model's element type at the end.
  ref.y_bound = (1 + precision.output) * ref.y_bound + precision.output * ref.y.cwiseAbs();
  if (naive_rows)
    ref.y_bound_naive =
        (1 + precision.output) * ref.y_bound_naive + precision.output * ref.y.cwiseAbs();
  ref.dx_bound = (1 + precision.output) * ref.dx_bound + precision.output * ref.dx.cwiseAbs();
  return ref;
}

double reference_bytes(const Config& cfg, long rows) {
  // Per block, in double: the weights and their magnitudes, and for each token row the
  // pre-activation, the activation and their bounds (and their gradients), with as much
  // again for Eigen's temporaries; beside them the rows' X, dY, Y, dX and their bounds.
  const double d = sizeof(double), H = cfg.hidden_size, p = cfg.projections();
  const double w = double(block_width(cfg)), tokens = double(cfg.tokens());
  const double weights = 2 * (H * p * w + w * H);
  const double per_row = 2 * (2 * p * w + 2 * w) * (cfg.backward ? 2 : 1);
  double bytes = (weights + double(rows) * (per_row + 8 * H)) * d;
  // Weight gradients sum over all tokens: X and dY whole, with their magnitudes, a block's
  // pass over every token, and the block's gradients and bounds.
  if (cfg.backward) bytes += (tokens * (4 * H + per_row) + 2 * weights) * d;
  return bytes;
}

Verification verify_output(Scheme scheme, const Matrix& y, Block held, const ReferenceRows& ref,
                           const Config& cfg, const World& world) {
  Agreement a;
  const bool own_bound = scheme == Scheme::naive && ref.y_bound_naive.size() > 0;
  a.add(y.middleRows(ref.rows.first - held.first, ref.rows.count), ref.y,
        own_bound ? ref.y_bound_naive : ref.y_bound);
  return conclude("Y", a, cfg.hidden_size + cfg.intermediate_size(), world);  // X·W1, then ·W2
}

std::vector<Verification> verify_gradients(const Matrix& dx, Block held,
                                           const std::optional<Gradients>& shard,
                                           const ReferenceRows& ref, const Matrix& x,
                                           const Matrix& dy, const Config& cfg,
                                           const World& world) {
  const long H = cfg.hidden_size, tokens = cfg.tokens(), p = cfg.projections();
  const bool swiglu = cfg.activation == Activation::swiglu;
  Agreement a_dx, a_dw_in[2], a_dw2, a_db_in[2], a_db2;
  a_dx.add(dx.middleRows(ref.rows.first - held.first, ref.rows.count), ref.dx, ref.dx_bound);
  if (shard) {
    // Weight gradients sum over every token, so this rank needs all of X and dY.
    const MatrixD x_all = x.cast<double>(), dy_all = dy.cast<double>();  // [tokens, H]
    const MatrixD x_abs = x_all.cwiseAbs(), dy_abs = dy_all.cwiseAbs();
    const Block mine = shard->columns;
    const Precision precision(cfg);
    for_each_block(cfg, mine, [&](Block cols) {
      const ReferenceBlock b(cfg, cols);
      const BlockPass pass(cfg, precision, b, x_all, x_abs, dy_all, dy_abs);
      const long at = cols.first - mine.first, w = cols.count;  // within the shard
      const MatrixD dw2 = pass.act.transpose() * dy_all;        // [w, H], tokens products
      const MatrixD dw2_bound =
          (summand_bound(pass.act, pass.act_in_error, tokens).transpose() * dy_abs).array() +
          precision.underflow_factor * underflow(tokens);
      a_dw2.add(shard->w_out->middleRows(at, w), dw2, dw2_bound);
      // dW_in sums the bf16-rounded dpre's products over the tokens; db_in the fp32 dpre.
      const MatrixD dw_in_terms = summand_bound(pass.dpre, pass.dpre_in_error, tokens);
      const MatrixD db_in_terms = summand_bound(pass.dpre, pass.dpre_error, tokens);
      for (long j = 0; j < p; ++j) {  // W1's columns, then W3's, in both layouts
        const MatrixD dpre = pass.dpre.middleCols(j * w, w);
        a_dw_in[j].add(shard->w_in->middleCols(j * mine.count + at, w), x_all.transpose() * dpre,
                       (x_abs.transpose() * dw_in_terms.middleCols(j * w, w)).array() +
                           precision.underflow_factor * underflow(tokens));
        if (cfg.bias)
          a_db_in[j].add(
              shard->b_in->middleCols(j * mine.count + at, w), dpre.colwise().sum(),
              db_in_terms.middleCols(j * w, w).colwise().sum().array() + underflow(tokens));
      }
    });
    if (cfg.bias)
      a_db2.add(*shard->b_out, dy_all.colwise().sum(),
                gamma_n(tokens) * dy_abs.colwise().sum().array() + underflow(tokens));
  }
  // Terms along the longest path to each element: H for the pre-activation, H for dact,
  // then the final sum: p·F for dX, the tokens for the weight and bias gradients.
  std::vector<Verification> checks = {
      conclude("dX", a_dx, 2 * H + p * cfg.intermediate_size(), world),
      conclude("dW1", a_dw_in[0], 2 * H + tokens, world)};
  if (swiglu) checks.push_back(conclude("dW3", a_dw_in[1], 2 * H + tokens, world));
  checks.push_back(conclude("dW2", a_dw2, H + tokens, world));
  if (cfg.bias) {
    checks.push_back(conclude("db1", a_db_in[0], 2 * H + tokens, world));
    if (swiglu) checks.push_back(conclude("db3", a_db_in[1], 2 * H + tokens, world));
    checks.push_back(conclude("db2", a_db2, tokens, world));
  }
  return checks;
}

}  // namespace tp_mlp
