// attention_verify: the attention block's float64 reference (--block attention), every
// gradient included, with a bound on each element's float error, and the comparisons.
//
// The reference shares nothing with the scheme but the master tensors: it runs the unsharded
// block in double, Q, K, V = X·[Wq | Wk | Wv] + b, RoPE, causal softmax(QKᵀ/√d)·V per sequence
// and head, Y = O·Wo + bo, and backward through the same steps. Attention mixes a sequence's
// tokens, so it is not split by tokens as the MLP's is: every rank computes all of it (a test-
// and demonstration-sized cost: O(tokens·s·N·d) on top of the projections).
//
// The bound, element by element, follows each float step (rounding.hpp's γ_n = n·u/(1 − n·u),
// u = 2⁻²⁴; every input bounded by |x̂| ≤ |x| + Δx):
//   a product of n terms   Δ(A·B) ≤ ΔA·(|B| + ΔB) + |A|·ΔB + γ_n·(|A| + ΔA)·(|B| + ΔB)
//   RoPE                   a pair's errors add, plus 4u of the pair's magnitudes: the rotation
//                          is orthogonal, its tables and three operations round
//   the scores             ΔS as a product, scaled by 1/√d, plus 4u·(|S| + max S) for the
//                          scaling and the subtraction of the row's maximum before exp
//   the softmax            with every score of a row within Δ of its exact value,
//                          P̂/P ∈ [e^(−2Δ), e^(2Δ)] exactly (the shift of a score moves the
//                          numerator, the sum moves the denominator), times (1 + γ_(n+10)) for
//                          the float exps (4u each), their sum, the reciprocal and the product:
//                          ΔP ≤ ρ·P, ρ = e^(2Δ)·(1 + γ_(n+10)) − 1
//   the softmax backward   dS = P ⊙ (dP − D)/√d, D = Σ P ⊙ dP: each factor's bound carried
//                          through, plus 4u for the subtraction and the three products
// Sums split over ranks (Y's and dX's partial sums, replicated KV heads' gradients) count the
// T additions among their terms. The --invariant schemes' exact sums (invariant_attention.hpp)
// add half a grid step per partial sum: to Y's and dX's rows for those schemes; to dK and dV
// (summed exactly over their query heads) for every scheme of such a run, whose bounds then
// carry it into dX and the gradients (2^-49 of a row's scale per part: immaterial beside
// float's roundings, and counted all the same). Terms of two errors multiplied are kept where they
// are cheap and dropped elsewhere (e.g. ΔP·ΔV): the whole bound is then doubled (kSafety), which
// covers them many times over wherever the bound is meaningful (relative errors ≪ 1).
//
// Worst-case bounds compound through three products and the softmax: at H = 1024 and 64
// tokens per sequence the loosest bound on Y exceeds max|Y| (a query head paired with the wrong
// KV head, an error of the size of Y, passed). So every bound is capped at kMistake of its
// tensor's max|reference|: 2⁻¹⁰, about 1000 times the float error measured at every size run
// (≤ 1.5·10⁻⁶ of max|reference|) and 1000 times below a head-sharding mistake's. Where the
// rigorous bound is tighter, it is the one used; the report says when the cap decides.
#pragma once

#include <optional>
#include <vector>

#include "tp_mlp/comm.hpp"
#include "tp_mlp/config.hpp"
#include "tp_mlp/head_sharding.hpp"
#include "tp_mlp/matrix.hpp"
#include "tp_mlp/mlp.hpp"
#include "tp_mlp/verification.hpp"
#include "tp_mlp/verify.hpp"
#include "tp_mlp/workspace.hpp"

namespace tp_mlp {

class AttentionReference final : public BlockReference {
 public:
  // What the whole bound is multiplied by, for the second-order terms dropped.
  static constexpr double kSafety = 2;
  // The largest error any element may have, as a share of its tensor's max|reference|, in an
  // fp32 model and in a bf16 one (whose rounding of Y and dX alone is up to 2⁻⁸ of an element).
  static constexpr double kMistake = 1.0 / 1024;
  static constexpr double kMistakeBf16 = 1.0 / 32;
  static double mistake(DType dtype) { return dtype == DType::bf16 ? kMistakeBf16 : kMistake; }

  AttentionReference(Workspace& ws, const Config& cfg);
  void compute(const ConstMatrixRef& x, const ConstMatrixRef& dy) override;
  Verification verify_output(Scheme scheme, const ConstMatrixRef& y, Block held,
                             const World& world) const override;
  // dX, and on the shard (columns: its query heads; w_in [H, (nq + 2·nkv)·d] = its columns of
  // [Wq | Wk | Wv], w_out its rows of Wo) dWq, dWk, dWv, dWo (dbq, dbk, dbv, dbo with --bias).
  std::vector<Verification> verify_gradients(Scheme scheme, const ConstMatrixRef& dx, Block held,
                                             MlpScheme* computed, const ConstMatrixRef& x,
                                             const ConstMatrixRef& dy, const World& world) override;
  // The same, of the attention gradients `shard` (none: this rank computed none), as a
  // layer's attention leaves them.
  std::vector<Verification> verify_shard(Scheme scheme, const ConstMatrixRef& dx, Block held,
                                         const std::optional<Gradients>& shard, const World& world);

 private:
  // P (in p_), its error bound (p_err_) and P + that (p_hi_) of sequence b, query head h,
  // from the rotated Q and K.
  void softmax_block(long b, long h);
  void forward_pass();
  void backward_pass();

  // Caps `bound` at mistake_ of max|ref| (see above).
  void cap(MatrixDRef bound, const ConstMatrixDRef& ref) const;

  const Config& cfg_;
  // A bf16 model's: what rounding a GEMM's input (and Y and dX) to bf16 adds, what its bf16
  // reduction (--reduce-dtype) adds, and its underflow's factor (rounding.hpp).
  const double input_, reduce_, lost_, mistake_;
  const long H_, N_, K_, d_, s_, t_, width_;  // width_ = (N + 2K)·d
  const double scale_;                        // 1/√d
  // Values, error bounds, |values| and |values| + bound ("hi"): what a float input may be.
  Tensor<double> x_, x_abs_, dy_, dy_abs_;            // [tokens, H]
  Tensor<double> w_, w_abs_, b_, wo_, wo_abs_, bo_;   // [H, width], [1, width], [N·d, H], [1, H]
  Tensor<double> qkv_, qkv_err_, qkv_abs_, qkv_hi_;   // [tokens, width], after RoPE
  Tensor<double> o_, o_err_, o_hi_;                   // [tokens, N·d]
  Tensor<double> y_, y_bound_;                        // [tokens, H]
  Tensor<double> do_, do_err_, do_abs_, do_hi_;       // [tokens, N·d] (backward)
  Tensor<double> dqkv_, dqkv_err_, dqkv_hi_;          // [tokens, width]; hi: |terms| + bound
  Tensor<double> dx_, dx_bound_;                      // [tokens, H]
  Tensor<double> dw_, dw_bound_, db_, db_bound_;      // [H, width], [1, width]
  Tensor<double> dwo_, dwo_bound_, dbo_, dbo_bound_;  // [N·d, H], [1, H]
  // --invariant: what each row of Y and dX adds to its bound in an invariant scheme, its
  // partial sums (N heads' for Y, N + K for dX) rounded onto the exact sum's grid.
  Tensor<double> y_grid_, dx_grid_;  // [tokens, 1]
  // One sequence and head: [s, s] each.
  Tensor<double> p_, p_err_, p_hi_, ds_, ds_err_, abs_, hi_;
};

}  // namespace tp_mlp
