// verify: the blocked double-precision reference and the comparison (see verify.hpp).
#include "tp_mlp/verify.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "tp_mlp/init.hpp"

namespace tp_mlp {

ReferenceRows reference_forward(const Config& cfg, const Matrix& x, int part, int parts) {
  const long H = cfg.hidden_size, FF = cfg.intermediate_size();
  const long first = cfg.tokens() * part / parts, rows = cfg.tokens() * (part + 1) / parts - first;
  const long block = std::max(1L, (cfg.shard_width() + 1) / 2);

  ReferenceRows ref{first, MatrixD::Zero(rows, H)};
  const MatrixD x_mine = x.middleRows(first, rows).cast<double>();  // [my tokens, H]
  MatrixD w1_block, w2_block, h_block;
  for (long col = 0; col < FF; col += block) {
    const long width = std::min(block, FF - col);
    w1_block.resize(H, width);  // [H, block] of the master W1
    w2_block.resize(width, H);  // [block, H] of the master W2
    fill_block(w1_block, master_w1(cfg), cfg.seed, 0, col);
    fill_block(w2_block, master_w2(cfg), cfg.seed, col, 0);
    h_block.noalias() = x_mine * w1_block;  // [my tokens, block]
    h_block = h_block.unaryExpr([](double v) { return 0.5 * v * (1.0 + std::erf(v * M_SQRT1_2)); });
    ref.y.noalias() += h_block * w2_block;
  }
  return ref;
}

double fp32_tolerance(const Config& cfg) {
  const double u = std::numeric_limits<float>::epsilon() / 2;
  return double(cfg.hidden_size + cfg.intermediate_size()) * u;
}

Verification compare(const Matrix& y, const ReferenceRows& ref, const Config& cfg,
                     const World& world) {
  const MatrixD mine = y.middleRows(ref.first_token, ref.y.rows()).cast<double>();
  const double local_diff = ref.y.size() ? (mine - ref.y).cwiseAbs().maxCoeff() : 0.0;
  const double local_scale = ref.y.size() ? ref.y.cwiseAbs().maxCoeff() : 0.0;

  Verification v;
  v.max_abs_diff = world.max(local_diff);
  v.max_rel_diff = v.max_abs_diff / world.max(local_scale);
  v.tolerance = fp32_tolerance(cfg);
  v.accumulated_terms = cfg.hidden_size + cfg.intermediate_size();
  v.passed = v.max_rel_diff <= v.tolerance;  // false for NaN too
  return v;
}

}  // namespace tp_mlp
