// layer_verify: the pre-norm layer's float64 reference (--block layer), every gradient
// included, and the comparisons.
//
// The reference shares nothing with the scheme but the master tensors: it runs the unsharded
// layer in double by the definitions (attention_reference.hpp's RoPE, causal attention and
// norms; the activations by std::erf and std::exp), h = x + Attention(Norm1(x)),
// y = h + MLP(Norm2(h)), and backward through the same steps. Attention mixes a sequence's
// tokens, so every rank computes all of it, as for the attention block.
//
// End to end, the bound: every element of a tensor within kMistake = 2^-10 of the tensor's
// max|reference|, the cap the attention block's bound ends at (attention_verify.hpp). It is not
// a rigorous worst case: attention's rigorous bound already compounds past the values
// themselves at H = 1024, and the norms divide by each row's spread, which a worst case cannot
// bound away from zero. What stands behind it is measurement, on both sides: ~1000x the float
// error measured at every size run (hundreds of seeds at tiny sizes, where cancellation is
// worst, never come near it), and ~1000x below the error of every planted sharding mistake.
// In bf16 the roundings carried through both blocks and the norms move the weights' gradients
// by up to 30% of their scale on tiny layers (measured), past any cap that would still mean
// something: there the end-to-end check keeps Y and dX, within kMistakeBf16 = 2^-3, and every
// parameter's gradient is judged part by part only.
//
// Part by part (verify_blocks), the derived bounds: each norm, attention and the MLP is run
// again by its own reference from the very input the scheme gave it (forward, and backward its
// output's gradient): the norms here, with float's roundings carried to first order
// (verify_norm); the blocks by their own references (attention_verify.hpp, verify.hpp), their
// inputs rounded to bf16 first in a bf16 model as the blocks round them. Each part's output,
// input gradient and parameters' gradients are checked with that part's bound, as if it ran
// alone. An error no longer passes through the norms before it is judged, so nothing
// compounds: a sharding mistake is caught by the bound that catches it in the block alone (a
// bias added on every rank, say, which bf16's rounding of the whole layer hides). What only
// the whole layer defines, the residuals and how the parts are wired together, is the
// end-to-end check's.
#pragma once

#include <vector>

#include "tp_mlp/agreement.hpp"
#include "tp_mlp/attention_verify.hpp"
#include "tp_mlp/causal_attention.hpp"
#include "tp_mlp/comm.hpp"
#include "tp_mlp/config.hpp"
#include "tp_mlp/matrix.hpp"
#include "tp_mlp/mlp.hpp"
#include "tp_mlp/verification.hpp"
#include "tp_mlp/verify.hpp"
#include "tp_mlp/workspace.hpp"

namespace tp_mlp {

class LayerReference final : public BlockReference {
 public:
  // The largest error any element may have, as a share of its tensor's max|reference|.
  static constexpr double kMistake = 1.0 / 1024;
  static constexpr double kMistakeBf16 = 1.0 / 8;
  static double mistake(DType dtype) { return dtype == DType::bf16 ? kMistakeBf16 : kMistake; }

  // The blocks' own references check the MLP on the token rows `mlp_rows` (verify.hpp).
  LayerReference(Workspace& ws, const Config& cfg, Block mlp_rows);
  void compute(const ConstMatrixRef& x, const ConstMatrixRef& dy) override;
  Verification verify_output(Scheme scheme, const ConstMatrixRef& y, Block held,
                             const World& world) const override;
  // dX, and of the layer that `computed` them (layer_gradients()): attention's dWq, dWk, dWv,
  // dWo, the MLP's dW1 (dW3), dW2, the biases' with --bias, and the norms' (dnorm1_w, ...).
  std::vector<Verification> verify_gradients(Scheme scheme, const ConstMatrixRef& dx, Block held,
                                             MlpScheme* computed, const ConstMatrixRef& x,
                                             const ConstMatrixRef& dy, const World& world) override;
  // Each norm's, attention's and the MLP's output, input gradient and parameters' gradients,
  // each against its own reference (verify_norm; attention_verify.hpp, verify.hpp) run from the
  // input the scheme gave it: "norm1.y", "attn.Y", "mlp.dW1", ...
  std::vector<Verification> verify_blocks(Scheme scheme, std::vector<Tensor<float>>& stages,
                                          const ConstMatrixRef& dy, MlpScheme* computed,
                                          const World& world) override;

 private:
  void forward_pass();
  void backward_pass();
  void add(Agreement& a, const ConstMatrixRef& got, const ConstMatrixDRef& ref,
           const ConstMatrixDRef& whole) const;
  // Norm `which` (1 or 2) from the input x [tokens, H] the scheme gave it: its output `out`,
  // and backward (dy, its output's gradient as the scheme had it; none without --backward)
  // its input gradient dx and the scheme's weight and bias gradients `g`, within first-order
  // bounds of float's rounding.
  std::vector<Verification> verify_norm(int which, const ConstMatrixRef& x,
                                        const ConstMatrixRef& out, const ConstMatrixRef* dy,
                                        const ConstMatrixRef& dx, const NormGradients* g,
                                        const World& world);

  const Config& cfg_;
  const double mistake_;  // mistake(cfg.dtype)
  const NormKind norm_;
  const long H_, N_, K_, d_, s_, t_, F_, p_, qkv_width_;  // qkv_width_ = (N + 2K)·d
  const HeadLayout heads_;                                // every head, as one rank holding all
  // Parameters: the norms' [1, H] (biases LayerNorm's only), attention's, the MLP's.
  Tensor<double> norm1_w_, norm1_b_, norm2_w_, norm2_b_;
  Tensor<double> w_qkv_, b_qkv_, w_o_, b_o_;  // [H, (N + 2K)·d], [1, ...], [N·d, H], [1, H]
  Tensor<double> w_in_, b_in_, w2_, b2_;      // [H, p·F], [1, p·F], [F, H], [1, H]
  // The forward's values: [tokens, ·] each.
  Tensor<double> x_, norm1_, qkv_, o_, h_, norm2_, pre_, act_, y_;
  // The backward's: dY, the norms' outputs' gradients (one buffer, used in turn), dh, dX...
  Tensor<double> dy_, d_norm_, dh_, dx_, d_act_, d_pre_, d_o_, d_qkv_;  // [tokens, ·]
  // ...and the parameters' gradients, shaped as the parameters.
  Tensor<double> d_norm1_w_, d_norm1_b_, d_norm2_w_, d_norm2_b_;
  Tensor<double> d_w_qkv_, d_b_qkv_, d_w_o_, d_b_o_, d_w_in_, d_b_in_, d_w2_, d_b2_;
  // A norm alone, from the scheme's input to it: x, its centred values' error bound, x̂ and
  // its error bound, the output and its bound [tokens, H]; the parameters' gradients [1, H].
  Tensor<double> n_x_, n_centred_err_, n_x_hat_, n_x_hat_err_, n_y_, n_y_bound_;
  Tensor<double> n_dy_, n_dx_, n_dx_bound_;  // backward: [tokens, H]
  Tensor<double> n_dw_, n_dw_bound_, n_db_, n_db_bound_;
  // Each block alone, from the scheme's own input to it.
  AttentionReference attention_;
  Reference mlp_;
};

}  // namespace tp_mlp
