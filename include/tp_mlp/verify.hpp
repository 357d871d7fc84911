// verify: an unsharded reference of the same model, and how far a scheme's results are from it.
//
// The reference shares nothing with the schemes but the master tensors: it runs in double
// precision with std::erf and std::exp, and splits its work by tokens (rows of X), not along
// the F dimension the schemes shard, so a sharding or reduction bug cannot cancel out. It
// walks F in blocks of regenerated master weights, half a shard wide, so no rank needs more
// memory than about its own shard, at any size; its buffers come from the workspace. Beside
// every value it computes a rigorous bound on the float error of that element (rounding.hpp);
// an element passes when it is within its own bound, and a tensor when every element does.
#pragma once

#include <optional>
#include <vector>

#include "tp_mlp/comm.hpp"
#include "tp_mlp/config.hpp"
#include "tp_mlp/matrix.hpp"
#include "tp_mlp/mlp.hpp"
#include "tp_mlp/partition.hpp"
#include "tp_mlp/verification.hpp"
#include "tp_mlp/workspace.hpp"

namespace tp_mlp {

// What a block's reference answers: the MLP's (below), the attention block's
// (attention_verify.hpp).
class BlockReference {
 public:
  virtual ~BlockReference() = default;
  // The reference Y (and dX) with their bounds, from x and dy [tokens, H] (dy empty without
  // --backward). In a real workspace only.
  virtual void compute(const ConstMatrixRef& x, const ConstMatrixRef& dy) = 0;
  // `scheme`'s Y, held for the token rows `held`, on the reference's rows; the verdict is
  // global: every rank must call it. An invariant scheme's bound includes its exact sum's grid.
  virtual Verification verify_output(Scheme scheme, const ConstMatrixRef& y, Block held,
                                     const World& world) const = 0;
  // dX on the reference's rows, and the weights' gradients (and the biases' with --bias) of
  // the scheme that `computed` them on this rank (null where none did, as on the ranks that
  // wait while world rank 0 computes the serial baseline).
  virtual std::vector<Verification> verify_gradients(Scheme scheme, const ConstMatrixRef& dx,
                                                     Block held, MlpScheme* computed,
                                                     const ConstMatrixRef& x,
                                                     const ConstMatrixRef& dy,
                                                     const World& world) = 0;
  // A layer's only (layer_verify.hpp): each block from the input the scheme gave it, `stages`
  // [tokens, H] each, in mlp.hpp's Stage order (the backward's unused without --backward; the
  // blocks' inputs rounded in place to the model's element type, as the blocks round them),
  // dy [tokens, H] the layer's; the blocks' gradients of the scheme that `computed` them.
  virtual std::vector<Verification> verify_blocks(Scheme, std::vector<Tensor<float>>&,
                                                  const ConstMatrixRef&, MlpScheme*, const World&) {
    return {};
  }
};

class Reference final : public BlockReference {
 public:
  // For the token rows `rows`: Y and, with --backward, dX and the weight gradients of any shard.
  Reference(Workspace& ws, const Config& cfg, Block rows);
  void compute(const ConstMatrixRef& x, const ConstMatrixRef& dy) override;
  Block rows() const { return rows_; }
  Verification verify_output(Scheme scheme, const ConstMatrixRef& y, Block held,
                             const World& world) const override;
  // The first layer's and W2's gradients on the shard.
  std::vector<Verification> verify_gradients(Scheme scheme, const ConstMatrixRef& dx, Block held,
                                             MlpScheme* computed, const ConstMatrixRef& x,
                                             const ConstMatrixRef& dy, const World& world) override;
  // The same, of the MLP's gradients `shard` (none: this rank computed none), as a layer's
  // MLP leaves them.
  std::vector<Verification> verify_shard(Scheme scheme, const ConstMatrixRef& dx, Block held,
                                         const std::optional<Gradients>& shard,
                                         const ConstMatrixRef& x, const ConstMatrixRef& dy,
                                         const World& world);

 private:
  struct Weights;  // a block of the master weights, with their magnitudes
  struct Pass;     // a block's forward (and backward) for some rows, with error bounds
  void regenerate(Block cols);
  void run_block(long rows, Block cols);  // on x_ and dy_'s first `rows` rows

  const Config& cfg_;
  const Block rows_;
  const long block_width_;
  // What the model rounds beyond its fp32 sums, by its element type and reduce dtype.
  const double input_, output_, reduce_, underflow_factor_;
  const bool naive_bf16_pre_;  // naive's pre-activation is reduced in bf16 too: its own bound
  // H; a block's p·w at most; the reference's rows, and dX's; a pass's rows at most, and dY's.
  const long H_, pw_, n_, dx_rows_, all_, dy_rows_;
  Tensor<double> y_, y_bound_;    // [rows, H]
  Tensor<double> dx_, dx_bound_;  // [rows, H], with --backward
  Tensor<double> y_bound_naive_;  // [rows, H], when naive's pre-activation is summed in bf16
  // Σ over F of what the ranks' partial sums add up in magnitude: a bf16 reduction's roundings
  // scale with it.
  Tensor<double> y_partials_, dx_partials_, naive_partials_;
  // Inputs of a pass: the reference's rows, or every token for the weight gradients.
  Tensor<double> x_, x_abs_, dy_, dy_abs_;  // [rows or tokens, H]
  // A block of the master weights, [H, p·w] and [w, H] at most.
  Tensor<double> w_in_, w_in_abs_, b_in_, w2_, w2_abs_;
  // A pass over a block: [rows, p·w] or [rows, w] at most.
  Tensor<double> pre_, pre_error_, magnitude_, act_, act_error_, act_in_error_;
  Tensor<double> dact_, dact_error_, dpre_, dpre_error_, dpre_in_error_;
  Tensor<double> terms_;  // [rows, p·w]: a sum's terms' bounds, or naive's pre-activation error
  Tensor<double> naive_act_error_;  // [rows, w]
  // One block of the weight gradients, and their biases' in the first row: [w, H] and [H, w].
  Tensor<double> dw2_, dw2_bound_, dw_in_, dw_in_bound_;
  // With --invariant, [rows, 1]: what rounding the blocks' partial sums onto the exact sum's
  // grid may add to each row's error (exact_sum.hpp), of Y and of dX.
  Tensor<double> y_grid_, dx_grid_;
};

}  // namespace tp_mlp
