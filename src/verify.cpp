// verify: the blocked double-precision reference and the comparisons (see verify.hpp).
#include "tp_mlp/verify.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "tp_mlp/init.hpp"

namespace tp_mlp {
namespace {

using RowVectorD = Eigen::RowVectorXd;

double gelu_scalar(double v) { return 0.5 * v * (1.0 + std::erf(v * M_SQRT1_2)); }

double gelu_derivative(double v) {  // Φ(v) + v·φ(v)
  return 0.5 * (1.0 + std::erf(v * M_SQRT1_2)) + v * std::exp(-0.5 * v * v) / std::sqrt(2 * M_PI);
}

// Columns [col, col + width) of W1 and b1, and the same rows of W2, from the generator.
struct ReferenceBlock {
  MatrixD w1;     // [H, width]
  MatrixD w2;     // [width, H]
  RowVectorD b1;  // [width], zeros without bias
  ReferenceBlock(const Config& cfg, long col, long width)
      : w1(cfg.hidden_size, width), w2(width, cfg.hidden_size), b1(RowVectorD::Zero(width)) {
    fill_block(w1, master_w1(cfg), cfg.seed, 0, col);
    fill_block(w2, master_w2(cfg), cfg.seed, col, 0);
    if (cfg.bias) {
      MatrixD b(1, width);
      fill_block(b, master_b1(cfg), cfg.seed, 0, col);
      b1 = b.row(0);
    }
  }
};

long block_width(const Config& cfg) { return std::max(1L, (cfg.shard_width() + 1) / 2); }

// Calls visit(col, width) for blocks covering columns [first, first + count) of 4H.
template <typename Visit>
void for_each_block(const Config& cfg, long first, long count, Visit visit) {
  const long width = block_width(cfg);
  for (long col = first; col < first + count; col += width)
    visit(col, std::min(width, first + count - col));
}

// Largest |got − ref| and largest |ref| seen, for one tensor on one rank.
struct MaxDiff {
  double diff = 0, scale = 0;
  template <typename A, typename B>
  void add(const A& got, const B& ref) {
    if (ref.size() == 0) return;
    diff = std::max(diff, (got.template cast<double>() - ref).cwiseAbs().maxCoeff());
    scale = std::max(scale, ref.cwiseAbs().maxCoeff());
  }
};

Verification conclude(const std::string& tensor, const MaxDiff& local, long terms,
                      const World& world) {
  Verification v;
  v.tensor = tensor;
  v.max_abs_diff = world.max(local.diff);
  v.max_rel_diff = v.max_abs_diff / world.max(local.scale);
  v.accumulated_terms = terms;
  v.tolerance = fp32_tolerance(terms);
  v.passed = v.max_rel_diff <= v.tolerance;  // false for NaN too
  return v;
}

}  // namespace

double fp32_tolerance(long accumulated_terms) {
  return double(accumulated_terms) * std::numeric_limits<float>::epsilon() / 2;
}

ReferenceRows reference_rows(const Config& cfg, const Matrix& x, const Matrix& dy, Block rows) {
  const long H = cfg.hidden_size;
  const bool backward = dy.size() > 0;
  ReferenceRows ref{rows.first, MatrixD::Zero(rows.count, H),
                    MatrixD::Zero(backward ? rows.count : 0, H)};
  const MatrixD x_rows = x.middleRows(rows.first, rows.count).cast<double>();  // [rows, H]
  const MatrixD dy_rows =
      backward ? MatrixD(dy.middleRows(rows.first, rows.count).cast<double>()) : MatrixD();
  for_each_block(cfg, 0, cfg.intermediate_size(), [&](long col, long width) {
    const ReferenceBlock b(cfg, col, width);
    const MatrixD h = (x_rows * b.w1).rowwise() + b.b1;  // [rows, width]
    ref.y.noalias() += h.unaryExpr(&gelu_scalar) * b.w2;
    if (backward) {
      const MatrixD dh = (dy_rows * b.w2.transpose()).cwiseProduct(h.unaryExpr(&gelu_derivative));
      ref.dx.noalias() += dh * b.w1.transpose();
    }
  });
  if (cfg.bias) {
    MatrixD b2(1, H);
    fill_block(b2, master_b2(cfg), cfg.seed, 0, 0);
    ref.y.rowwise() += b2.row(0);
  }
  return ref;
}

double reference_bytes(const Config& cfg, long rows) {
  // Blocks of W1 and W2 half a shard wide, and the rows' activations, in double.
  const double d = sizeof(double), H = cfg.hidden_size, block = double(block_width(cfg));
  const double tokens = double(cfg.tokens());
  double bytes = (2 * H * block + double(rows) * (2 * block + 2 * H)) * d;
  // Weight gradients sum over all tokens: X and dY whole, and three [tokens, block] blocks.
  if (cfg.backward) bytes += tokens * (2 * H + 3 * block) * d;
  return bytes;
}

Verification verify_output(const Matrix& y, long first_token, const ReferenceRows& ref,
                           const Config& cfg, const World& world) {
  MaxDiff d;
  d.add(y.middleRows(ref.first_token - first_token, ref.y.rows()), ref.y);
  return conclude("Y", d, cfg.hidden_size + cfg.intermediate_size(), world);  // X·W1, then ·W2
}

std::vector<Verification> verify_gradients(const Matrix& dx, long first_token,
                                           const std::optional<Gradients>& shard,
                                           const ReferenceRows& ref, const Matrix& x,
                                           const Matrix& dy, const Config& cfg,
                                           const World& world) {
  MaxDiff d_dx, d_dw1, d_dw2, d_db1, d_db2;
  d_dx.add(dx.middleRows(ref.first_token - first_token, ref.dx.rows()), ref.dx);
  if (shard) {
    const Gradients& grads = *shard;
    // Weight gradients sum over every token, so this rank needs all of X and dY.
    const MatrixD x_all = x.cast<double>(), dy_all = dy.cast<double>();  // [tokens, H]
    const long shard_width = grads.dw1->cols();
    for_each_block(cfg, grads.first_column, shard_width, [&](long col, long width) {
      const long at = col - grads.first_column;  // within the shard
      const ReferenceBlock b(cfg, col, width);
      const MatrixD h = (x_all * b.w1).rowwise() + b.b1;  // [tokens, width]
      const MatrixD dh = (dy_all * b.w2.transpose()).cwiseProduct(h.unaryExpr(&gelu_derivative));
      d_dw2.add(grads.dw2->middleRows(at, width),
                MatrixD(h.unaryExpr(&gelu_scalar).transpose() * dy_all));
      d_dw1.add(grads.dw1->middleCols(at, width), MatrixD(x_all.transpose() * dh));
      if (cfg.bias) d_db1.add(grads.db1->middleCols(at, width), MatrixD(dh.colwise().sum()));
    });
    if (cfg.bias) d_db2.add(*grads.db2, MatrixD(dy_all.colwise().sum()));
  }
  // Terms along the longest path to each element: H for the pre-activation, H for dG,
  // then the final sum: 4H for dX, the tokens for the weight and bias gradients.
  const long H = cfg.hidden_size, tokens = cfg.tokens();
  std::vector<Verification> checks = {conclude("dX", d_dx, 2 * H + cfg.intermediate_size(), world),
                                      conclude("dW1", d_dw1, 2 * H + tokens, world),
                                      conclude("dW2", d_dw2, H + tokens, world)};
  if (cfg.bias) {
    checks.push_back(conclude("db1", d_db1, 2 * H + tokens, world));
    checks.push_back(conclude("db2", d_db2, tokens, world));
  }
  return checks;
}

}  // namespace tp_mlp
