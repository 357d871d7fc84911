// layer_verify: the pre-norm layer in float64 by its definitions, and the comparisons (see
// layer_verify.hpp); the exact activations are rounding.hpp's, the MLP's reference's own.
#include "tp_mlp/layer_verify.hpp"

#include <cmath>

#include "tp_mlp/agreement.hpp"
#include "tp_mlp/attention_reference.hpp"
#include "tp_mlp/bf16.hpp"
#include "tp_mlp/head_sharding.hpp"
#include "tp_mlp/init.hpp"
#include "tp_mlp/norm.hpp"
#include "tp_mlp/rounding.hpp"

namespace tp_mlp {
namespace {

// Whether the whole layer's weight gradients are compared end to end: not in bf16, where each
// is judged block by block only (verify_gradients says why), so their products would be work
// (and at real shapes gigabytes of float64) thrown away.
bool compares_weight_grads(const Config& cfg) { return cfg.backward && cfg.dtype != DType::bf16; }

}  // namespace

// What an element of `ref` may be off by: mistake_ of its tensor's (`whole`) largest magnitude.
void LayerReference::add(Agreement& a, const ConstMatrixRef& got, const ConstMatrixDRef& ref,
                         const ConstMatrixDRef& whole) const {
  a.add_within(got, ref, whole.size() == 0 ? 0 : mistake_ * whole.cwiseAbs().maxCoeff());
}

LayerReference::LayerReference(Workspace& ws, const Config& cfg, Block mlp_rows)
    : cfg_(cfg),
      mistake_(mistake(cfg.dtype)),
      norm_(cfg.norm_kind()),
      H_(cfg.hidden_size),
      N_(cfg.heads()),
      K_(cfg.kv_heads()),
      d_(cfg.head_size()),
      s_(cfg.seq_len),
      t_(cfg.tokens()),
      F_(cfg.intermediate_size()),
      p_(cfg.projections()),
      qkv_width_((N_ + 2 * K_) * d_),
      heads_(HeadSharding(N_, K_, 1).of(0).layout(d_, N_, K_)),
      norm1_w_(ws.matrix<double>(1, H_)),
      norm1_b_(ws.matrix<double>(norm_ == NormKind::layer ? 1 : 0, H_)),
      norm2_w_(ws.matrix<double>(1, H_)),
      norm2_b_(ws.matrix<double>(norm1_b_.rows(), H_)),
      w_qkv_(ws.matrix<double>(H_, qkv_width_)),
      b_qkv_(ws.matrix<double>(1, qkv_width_)),
      w_o_(ws.matrix<double>(N_ * d_, H_)),
      b_o_(ws.matrix<double>(1, H_)),
      w_in_(ws.matrix<double>(H_, p_ * F_)),
      b_in_(ws.matrix<double>(1, p_ * F_)),
      w2_(ws.matrix<double>(F_, H_)),
      b2_(ws.matrix<double>(1, H_)),
      x_(ws.matrix<double>(t_, H_)),
      norm1_(ws.matrix<double>(t_, H_)),
      qkv_(ws.matrix<double>(t_, qkv_width_)),
      o_(ws.matrix<double>(t_, N_ * d_)),
      h_(ws.matrix<double>(t_, H_)),
      norm2_(ws.matrix<double>(t_, H_)),
      pre_(ws.matrix<double>(t_, p_ * F_)),
      act_(ws.matrix<double>(t_, F_)),
      y_(ws.matrix<double>(t_, H_)),
      dy_(ws.matrix<double>(cfg.backward ? t_ : 0, H_)),
      d_norm_(ws.matrix<double>(dy_.rows(), H_)),
      dh_(ws.matrix<double>(dy_.rows(), H_)),
      dx_(ws.matrix<double>(dy_.rows(), H_)),
      d_act_(ws.matrix<double>(dy_.rows(), F_)),
      d_pre_(ws.matrix<double>(dy_.rows(), p_ * F_)),
      d_o_(ws.matrix<double>(dy_.rows(), N_ * d_)),
      d_qkv_(ws.matrix<double>(dy_.rows(), qkv_width_)),
      d_norm1_w_(ws.matrix<double>(cfg.backward ? 1 : 0, H_)),
      d_norm1_b_(ws.matrix<double>(cfg.backward ? norm1_b_.rows() : 0, H_)),
      d_norm2_w_(ws.matrix<double>(d_norm1_w_.rows(), H_)),
      d_norm2_b_(ws.matrix<double>(d_norm1_b_.rows(), H_)),
      d_w_qkv_(ws.matrix<double>(compares_weight_grads(cfg) ? H_ : 0, qkv_width_)),
      d_b_qkv_(ws.matrix<double>(compares_weight_grads(cfg) ? 1 : 0, qkv_width_)),
      d_w_o_(ws.matrix<double>(compares_weight_grads(cfg) ? N_ * d_ : 0, H_)),
      d_b_o_(ws.matrix<double>(d_b_qkv_.rows(), H_)),
      d_w_in_(ws.matrix<double>(d_w_qkv_.rows(), p_ * F_)),
      d_b_in_(ws.matrix<double>(d_b_qkv_.rows(), p_ * F_)),
      d_w2_(ws.matrix<double>(compares_weight_grads(cfg) ? F_ : 0, H_)),
      d_b2_(ws.matrix<double>(d_b_qkv_.rows(), H_)),
      n_x_(ws.matrix<double>(t_, H_)),
      n_centred_err_(ws.matrix<double>(t_, H_)),
      n_x_hat_(ws.matrix<double>(t_, H_)),
      n_x_hat_err_(ws.matrix<double>(t_, H_)),
      n_y_(ws.matrix<double>(t_, H_)),
      n_y_bound_(ws.matrix<double>(t_, H_)),
      n_dy_(ws.matrix<double>(cfg.backward ? t_ : 0, H_)),
      n_dx_(ws.matrix<double>(n_dy_.rows(), H_)),
      n_dx_bound_(ws.matrix<double>(n_dy_.rows(), H_)),
      n_dw_(ws.matrix<double>(1, H_)),
      n_dw_bound_(ws.matrix<double>(1, H_)),
      n_db_(ws.matrix<double>(1, H_)),
      n_db_bound_(ws.matrix<double>(1, H_)),
      attention_(ws, cfg),
      mlp_(ws, cfg, mlp_rows) {}

void LayerReference::compute(const ConstMatrixRef& x, const ConstMatrixRef& dy) {
  const std::uint64_t seed = cfg_.seed;
  fill_block(norm1_w_, master_norm_weight(cfg_, 1), seed, 0, 0);
  fill_block(norm2_w_, master_norm_weight(cfg_, 2), seed, 0, 0);
  fill_block(norm1_b_, master_norm_bias(cfg_, 1), seed, 0, 0);  // nothing for RMSNorm
  fill_block(norm2_b_, master_norm_bias(cfg_, 2), seed, 0, 0);
  const Block all_query = {0, N_}, all_kv = {0, K_}, all_hidden = {0, H_}, one_row = {0, 1};
  fill_qkv(w_qkv_, cfg_, LayerPart::weight, all_hidden, all_query, all_kv);
  fill_block(w_o_, master_wo(cfg_), seed, 0, 0);
  fill_first_layer(w_in_, cfg_, LayerPart::weight, all_hidden, {0, F_});
  fill_block(w2_, master_w2(cfg_), seed, 0, 0);
  for (Tensor<double>* b : {&b_qkv_, &b_o_, &b_in_, &b2_}) b->setZero();
  if (cfg_.bias) {
    fill_qkv(b_qkv_, cfg_, LayerPart::bias, one_row, all_query, all_kv);
    fill_block(b_o_, master_bo(cfg_), seed, 0, 0);
    fill_first_layer(b_in_, cfg_, LayerPart::bias, one_row, {0, F_});
    fill_block(b2_, master_b2(cfg_), seed, 0, 0);
  }
  x_ = x.cast<double>();
  forward_pass();
  if (dy_.rows() == 0) return;
  dy_ = dy.cast<double>();
  backward_pass();
}

void LayerReference::forward_pass() {
  const long nd = N_ * d_, kd = K_ * d_;
  const double eps = kNormEps, theta = cfg_.rope_base();
  // h = x + Attention(Norm1(x))
  exact_norm(norm_, x_, norm1_w_, norm1_b_, eps, norm1_);
  qkv_.noalias() = norm1_ * w_qkv_;
  qkv_.rowwise() += b_qkv_.row(0);
  exact_rope(qkv_.leftCols(nd), s_, d_, theta);
  exact_rope(qkv_.middleCols(nd, kd), s_, d_, theta);
  exact_causal_attention(qkv_.leftCols(nd), qkv_.middleCols(nd, kd), qkv_.rightCols(kd), s_, heads_,
                         o_);
  h_ = x_;
  h_.noalias() += o_ * w_o_;
  h_.rowwise() += b_o_.row(0);
  // y = h + MLP(Norm2(h))
  exact_norm(norm_, h_, norm2_w_, norm2_b_, eps, norm2_);
  pre_.noalias() = norm2_ * w_in_;
  pre_.rowwise() += b_in_.row(0);
  exact_activate(cfg_.activation, pre_, act_);
  y_ = h_;
  y_.noalias() += act_ * w2_;
  y_.rowwise() += b2_.row(0);
}

void LayerReference::backward_pass() {
  const long nd = N_ * d_, kd = K_ * d_;
  const double eps = kNormEps, theta = cfg_.rope_base();
  const bool weights = compares_weight_grads(cfg_);
  // The MLP, then Norm2; dh = dY + what comes back through them.
  if (weights) {
    d_w2_.noalias() = act_.transpose() * dy_;
    d_b2_ = dy_.colwise().sum();
  }
  d_act_.noalias() = dy_ * w2_.transpose();
  exact_activate_backward(cfg_.activation, pre_, d_act_, d_pre_);
  if (weights) {
    d_w_in_.noalias() = norm2_.transpose() * d_pre_;
    d_b_in_ = d_pre_.colwise().sum();
  }
  d_norm_.noalias() = d_pre_ * w_in_.transpose();
  exact_norm_backward(norm_, h_, norm2_w_, d_norm_, eps, dh_, d_norm2_w_, d_norm2_b_);
  dh_ += dy_;
  // Attention, then Norm1; dX = dh + what comes back through them.
  if (weights) {
    d_w_o_.noalias() = o_.transpose() * dh_;
    d_b_o_ = dh_.colwise().sum();
  }
  d_o_.noalias() = dh_ * w_o_.transpose();
  exact_causal_attention_backward(qkv_.leftCols(nd), qkv_.middleCols(nd, kd), qkv_.rightCols(kd),
                                  d_o_, s_, heads_, d_qkv_.leftCols(nd), d_qkv_.middleCols(nd, kd),
                                  d_qkv_.rightCols(kd));
  exact_rope_backward(d_qkv_.leftCols(nd), s_, d_, theta);
  exact_rope_backward(d_qkv_.middleCols(nd, kd), s_, d_, theta);
  if (weights) {
    d_w_qkv_.noalias() = norm1_.transpose() * d_qkv_;
    d_b_qkv_ = d_qkv_.colwise().sum();
  }
  d_norm_.noalias() = d_qkv_ * w_qkv_.transpose();
  exact_norm_backward(norm_, x_, norm1_w_, d_norm_, eps, dx_, d_norm1_w_, d_norm1_b_);
  dx_ += dh_;
}

// The scheme holds the token rows `held`: every one, or under sequence parallelism its block.
Verification LayerReference::verify_output(Scheme, const ConstMatrixRef& y, Block held,
                                           const World& world) const {
  Agreement a;
  add(a, y, y_.middleRows(held.first, held.count), y_);
  // The longest sums: Norm1's, QKV's, QKᵀ's, P·V's, Wo's, Norm2's, W_in's, W2's.
  return conclude("Y", a, 4 * H_ + d_ + s_ + N_ * d_ + F_, world);
}

std::vector<Verification> LayerReference::verify_gradients(Scheme, const ConstMatrixRef& dx,
                                                           Block held, MlpScheme* computed,
                                                           const ConstMatrixRef&,
                                                           const ConstMatrixRef&,
                                                           const World& world) {
  // Attention's Q, K, V, O; the MLP's first projections, W2; each with its bias; the norms'.
  Agreement a_dx, a_qkv[3], a_o, a_b_qkv[3], a_b_o, a_in[2], a_w2, a_b_in[2], a_b2;
  Agreement a_norm_w[2], a_norm_b[2];
  add(a_dx, dx, dx_.middleRows(held.first, held.count), dx_);
  // The longest paths back: through the MLP (H, p·F), Norm2 (H), Wo (H), attention (d,
  // s·N/K), the fused projection ((N + 2K)·d), Norm1 (H); a weight's sum adds the tokens.
  const long to_attention = 3 * H_ + p_ * F_, to_qkv = to_attention + H_ + d_ + s_ * (N_ / K_);
  const long to_x = to_qkv + qkv_width_ + H_;
  // bf16's roundings, carried through two blocks and the norms, move a weight's gradient too
  // far from the unrounded model's on tiny layers (by up to 30% of its scale, measured) for one
  // cap to judge: in bf16 each is judged block by block only (verify_blocks).
  if (cfg_.dtype == DType::bf16) return {conclude("dX", a_dx, to_x, world)};
  if (computed) {
    const LayerGradients g = computed->layer_gradients();
    if (g.attention.columns.count > 0) {
      const FusedColumns at = fused_qkv_columns(g.attention.columns, N_, K_, d_);
      const FusedColumns all = fused_qkv_columns({0, N_}, N_, K_, d_);
      for (int j = 0; j < 3; ++j) {
        const Block here = at.here[j], master = at.master[j], whole = all.master[j];
        auto ref = [&](const Tensor<double>& t, Block b) { return t.middleCols(b.first, b.count); };
        add(a_qkv[j], g.attention.w_in->middleCols(here.first, here.count), ref(d_w_qkv_, master),
            ref(d_w_qkv_, whole));
        if (g.attention.b_in)
          add(a_b_qkv[j], g.attention.b_in->middleCols(here.first, here.count),
              ref(d_b_qkv_, master), ref(d_b_qkv_, whole));
      }
      const Block rows = at.master[0];
      add(a_o, *g.attention.w_out, d_w_o_.middleRows(rows.first, rows.count), d_w_o_);
    }
    if (g.attention.b_out) add(a_b_o, *g.attention.b_out, d_b_o_, d_b_o_);
    const Block cols = g.mlp.columns;  // of F, in each projection
    for (long j = 0; j < p_; ++j) {
      const auto whole = d_w_in_.middleCols(j * F_, F_), whole_b = d_b_in_.middleCols(j * F_, F_);
      add(a_in[j], g.mlp.w_in->middleCols(j * cols.count, cols.count),
          whole.middleCols(cols.first, cols.count), whole);
      if (g.mlp.b_in)
        add(a_b_in[j], g.mlp.b_in->middleCols(j * cols.count, cols.count),
            whole_b.middleCols(cols.first, cols.count), whole_b);
    }
    add(a_w2, *g.mlp.w_out, d_w2_.middleRows(cols.first, cols.count), d_w2_);
    if (g.mlp.b_out) add(a_b2, *g.mlp.b_out, d_b2_, d_b2_);
    add(a_norm_w[0], *g.norm1.weight, d_norm1_w_, d_norm1_w_);
    add(a_norm_w[1], *g.norm2.weight, d_norm2_w_, d_norm2_w_);
    if (g.norm1.bias) add(a_norm_b[0], *g.norm1.bias, d_norm1_b_, d_norm1_b_);
    if (g.norm2.bias) add(a_norm_b[1], *g.norm2.bias, d_norm2_b_, d_norm2_b_);
  }
  std::vector<Verification> checks = {conclude("dX", a_dx, to_x, world)};
  const char* qkv_names[] = {"dWq", "dWk", "dWv"};
  for (int j = 0; j < 3; ++j)
    checks.push_back(conclude(qkv_names[j], a_qkv[j], to_qkv + t_, world));
  checks.push_back(conclude("dWo", a_o, to_attention + t_, world));
  const char* in_names[] = {"dW1", "dW3"};
  for (long j = 0; j < p_; ++j) checks.push_back(conclude(in_names[j], a_in[j], H_ + t_, world));
  checks.push_back(conclude("dW2", a_w2, t_, world));
  checks.push_back(conclude("dnorm1_w", a_norm_w[0], to_x + t_, world));
  checks.push_back(conclude("dnorm2_w", a_norm_w[1], to_attention + t_, world));
  if (norm_ == NormKind::layer) {
    checks.push_back(conclude("dnorm1_b", a_norm_b[0], to_x + t_, world));
    checks.push_back(conclude("dnorm2_b", a_norm_b[1], to_attention + t_, world));
  }
  if (!cfg_.bias) return checks;
  const char* b_qkv_names[] = {"dbq", "dbk", "dbv"};
  for (int j = 0; j < 3; ++j)
    checks.push_back(conclude(b_qkv_names[j], a_b_qkv[j], to_qkv + t_, world));
  checks.push_back(conclude("dbo", a_b_o, to_attention + t_, world));
  const char* b_in_names[] = {"db1", "db3"};
  for (long j = 0; j < p_; ++j)
    checks.push_back(conclude(b_in_names[j], a_b_in[j], H_ + t_, world));
  checks.push_back(conclude("db2", a_b2, t_, world));
  return checks;
}

// The norm's float steps (norm.cpp), per row of H: μ = Σx/H, c = x − μ, var = Σc²/H,
// r = 1/√(var + eps), x̂ = c·r, y = x̂·w (+ b); backward, with g = dy ⊙ w,
// dx = r·(g − mean(g) − x̂·mean(g ⊙ x̂)), dw = Σ_rows dy ⊙ x̂, db = Σ_rows dy, the last two
// summed over T ranks' rows under sequence parallelism. Each error is carried to first order
// (a sum of n terms: γ_n·Σ|terms|; r's relative error half var's, plus its own three
// roundings; a product's or difference's, u of its magnitude), and the whole doubled
// (AttentionReference::kSafety) for the terms dropped.
std::vector<Verification> LayerReference::verify_norm(int which, const ConstMatrixRef& x,
                                                      const ConstMatrixRef& out,
                                                      const ConstMatrixRef* dy,
                                                      const ConstMatrixRef& dx,
                                                      const NormGradients* g, const World& world) {
  const double u = kFloatUnitRoundoff, safety = AttentionReference::kSafety;
  const bool centred = norm_ == NormKind::layer;
  const auto w = (which == 1 ? norm1_w_ : norm2_w_).row(0).array();
  const Tensor<double>& b = which == 1 ? norm1_b_ : norm2_b_;
  n_x_ = x.cast<double>();
  if (dy) n_dy_ = dy->cast<double>();
  for (long row = 0; row < t_; ++row) {
    const auto xr = n_x_.row(row).array();
    const double mean = centred ? xr.mean() : 0;
    const double mean_err = centred ? gamma_n(H_ + 1) * xr.abs().mean() : 0;
    const auto c = xr - mean;
    n_centred_err_.row(row).array() = mean_err + u * (c.abs() + mean_err);
    const auto c_err = n_centred_err_.row(row).array();
    const double var = c.square().mean();
    const double var_err =
        gamma_n(H_ + 2) * (c.abs() + c_err).square().mean() + 2 * (c.abs() * c_err).mean();
    const double r = 1 / std::sqrt(var + kNormEps);
    const double r_rel = var_err / (2 * (var + kNormEps)) + 3 * u;
    n_x_hat_.row(row).array() = c * r;
    const auto x_hat = n_x_hat_.row(row).array();
    n_x_hat_err_.row(row).array() = r * c_err + (r_rel + u) * x_hat.abs();
    const auto x_hat_err = n_x_hat_err_.row(row).array();
    n_y_.row(row).array() = x_hat * w;
    if (centred) n_y_.row(row) += b.row(0);
    n_y_bound_.row(row).array() =
        safety * (w.abs() * x_hat_err + u * (w.abs() * (x_hat.abs() + x_hat_err)) +
                  u * n_y_.row(row).array().abs());
    if (!dy) continue;
    const auto gr = n_dy_.row(row).array() * w;
    const auto g_abs = gr.abs();
    const double g_mean = centred ? gr.mean() : 0;
    const double g_mean_err = centred ? gamma_n(H_ + 2) * g_abs.mean() : 0;
    const double gx_mean = (gr * x_hat).mean();
    const double gx_mean_err =
        gamma_n(H_ + 3) * (g_abs * (x_hat.abs() + x_hat_err)).mean() + (g_abs * x_hat_err).mean();
    const auto term = gr - g_mean - x_hat * gx_mean;
    const auto term_err = u * g_abs + g_mean_err + x_hat_err * std::abs(gx_mean) +
                          (x_hat.abs() + x_hat_err) * gx_mean_err +
                          3 * u * (g_abs + std::abs(g_mean) + x_hat.abs() * std::abs(gx_mean));
    n_dx_.row(row).array() = r * term;
    n_dx_bound_.row(row).array() =
        safety * (r * term_err + (r_rel + u) * (r * term.abs() + r * term_err));
  }
  n_y_bound_.array() += underflow(H_ + 2);
  const std::string name = "norm" + std::to_string(which) + ".";
  Agreement a_y, a_dx, a_w, a_b;
  a_y.add(out, n_y_, n_y_bound_);
  std::vector<Verification> checks = {conclude(name + "y", a_y, 2 * H_, world)};
  if (!dy) return checks;
  n_dx_bound_.array() += underflow(H_ + 3);
  a_dx.add(dx, n_dx_, n_dx_bound_);
  checks.push_back(conclude(name + "dX", a_dx, 2 * H_ + 3, world));
  const long n = t_ + cfg_.tp_size;  // the tokens, and T partial sums under sequence parallelism
  const auto dy_abs = n_dy_.cwiseAbs().array();
  n_dw_ = (n_dy_.array() * n_x_hat_.array()).colwise().sum();
  n_dw_bound_ =
      (dy_abs * n_x_hat_err_.array()).colwise().sum() +
      gamma_n(n) * (dy_abs * (n_x_hat_.array().abs() + n_x_hat_err_.array())).colwise().sum();
  n_dw_bound_ = safety * n_dw_bound_.array() + underflow(n);
  n_db_ = n_dy_.colwise().sum();
  n_db_bound_ = safety * gamma_n(n) * dy_abs.colwise().sum() + underflow(n);
  if (g) {
    a_w.add(*g->weight, n_dw_, n_dw_bound_);
    if (g->bias) a_b.add(*g->bias, n_db_, n_db_bound_);
  }
  checks.push_back(conclude(name + "dw", a_w, 2 * H_ + n, world));
  if (centred) checks.push_back(conclude(name + "db", a_b, n, world));
  return checks;
}

std::vector<Verification> LayerReference::verify_blocks(Scheme scheme,
                                                        std::vector<Tensor<float>>& stages,
                                                        const ConstMatrixRef& dy,
                                                        MlpScheme* computed, const World& world) {
  auto stage = [&](Stage s) -> Tensor<float>& { return stages[std::size_t(s)]; };
  const bool backward = dy.rows() > 0;
  const Block all = {0, t_};  // every stage is whole on every rank
  std::optional<LayerGradients> g;
  if (computed && backward) g = computed->layer_gradients();
  std::vector<Verification> checks;
  auto take = [&](const char* part, std::vector<Verification> of_part) {
    for (Verification& v : of_part) {
      if (*part) v.tensor = std::string(part) + "." + v.tensor;
      checks.push_back(std::move(v));
    }
  };
  // The norms first, from X and from the scheme's h, while their outputs are as they gave them.
  const ConstMatrixRef d_norm1 = stage(Stage::attention_dx), d_norm2 = stage(Stage::mlp_dx);
  take("",
       verify_norm(1, stage(Stage::x), stage(Stage::attention_in), backward ? &d_norm1 : nullptr,
                   stage(Stage::norm1_dx), g ? &g->norm1 : nullptr, world));
  take("", verify_norm(2, stage(Stage::h), stage(Stage::mlp_in), backward ? &d_norm2 : nullptr,
                       stage(Stage::norm2_dx), g ? &g->norm2 : nullptr, world));
  // A bf16 block rounds its float inputs to bf16 first; its reference starts from there.
  if (cfg_.dtype == DType::bf16)
    for (const Stage in : {Stage::attention_in, Stage::attention_dy, Stage::mlp_in})
      round_to_bf16(stage(in));
  attention_.compute(stage(Stage::attention_in), backward ? stage(Stage::attention_dy) : dy);
  take("attn", {attention_.verify_output(scheme, stage(Stage::attention_out), all, world)});
  if (backward)
    take("attn", attention_.verify_shard(scheme, stage(Stage::attention_dx), all,
                                         g ? std::optional(g->attention) : std::nullopt, world));
  mlp_.compute(stage(Stage::mlp_in), dy);
  take("mlp", {mlp_.verify_output(scheme, stage(Stage::mlp_out), all, world)});
  if (backward)
    take("mlp", mlp_.verify_shard(scheme, stage(Stage::mlp_dx), all,
                                  g ? std::optional(g->mlp) : std::nullopt, stage(Stage::mlp_in),
                                  dy, world));
  return checks;
}

}  // namespace tp_mlp
