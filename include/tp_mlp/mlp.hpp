// mlp: the MLP block Y = act(X·W1 + b1)·W2 + b2 (SwiGLU: act(X·W1 + b1, X·W3 + b3)), computed
// four ways from the same master weights (the biases only with --bias).
//
//   megatron     W1 (and W3) split by columns, W2 by rows. Column-parallel W1 leaves every rank
//                whole columns of the pre-activation, so the activation is local; row-parallel
//                W2 takes exactly those columns. One all-reduce of [tokens, H] forward
//                (Megatron's g), one backward, for dX (its f).
//   megatron-sp  the same with sequence parallelism: X and Y live split by tokens, so the
//                forward all-gathers X and reduce-scatters Y, and the backward does the
//                conjugates: the same bytes as the all-reduce, a T-th of the activations.
//   naive        W1 (W3) and W2 all split by rows (over H, then over F). Each rank's X·W1 is
//                only a partial sum, and the activation is not linear, so the [tokens, p·F]
//                pre-activation must be all-reduced before it; then a second all-reduce of
//                [tokens, H]: 1 + p·F/H times the bytes (5x for GeLU at F = 4H). Forward only.
//   serial       the whole MLP on one rank, no communication: the baseline.
//
// All buffers are allocated by the constructors; forward() and backward() allocate nothing.
// Each scheme states beside its constructor what that constructor allocates (scheme_bytes),
// so that memory is checked before anything is allocated, by the same account.
#pragma once

#include <memory>

#include "tp_mlp/bf16.hpp"
#include "tp_mlp/comm.hpp"
#include "tp_mlp/config.hpp"
#include "tp_mlp/matrix.hpp"
#include "tp_mlp/partition.hpp"

namespace tp_mlp {

// Which ranks compute a scheme. The parallel schemes run on every rank of each TP group; the
// serial baseline on world rank 0 alone, while the others wait, so that it is timed with a
// core to itself.
class Placement {
 public:
  Placement(Scheme scheme, const World& world)
      : on_every_rank_(scheme != Scheme::serial), here_(on_every_rank_ || world.is_root()) {}
  bool on_every_rank() const { return on_every_rank_; }
  bool computes_here() const { return here_; }

 private:
  bool on_every_rank_;
  bool here_;
};

// One rank's slice of the model: columns `columns` of F of every projection of the first
// layer, side by side (w_in: [H, p·width], W1's then W3's; b_in: [1, p·width]), and the same
// rows of W2 (w_out: [width, H]) with the whole b2 (b_out: [1, H]). Biases are null without
// --bias. The same shape holds the model's parameters and, after backward(), their gradients.
// Weights are of the scheme's element type; biases, few, stay in float (their values rounded
// to bf16 in a bf16 model), and so are every gradient.
template <typename M, typename Bias>
struct ShardTensors {
  Block columns;
  M* w_in = nullptr;
  M* w_out = nullptr;
  Bias* b_in = nullptr;
  Bias* b_out = nullptr;
};
using Parameters = ShardTensors<Matrix, Matrix>;    // a --dtype fp32 scheme's
using ParametersB = ShardTensors<MatrixB, Matrix>;  // a --dtype bf16 scheme's
using Gradients = ShardTensors<const Matrix, const Matrix>;

// What a scheme's constructor allocates on one rank, in bytes.
struct SchemeBytes {
  double weights = 0;  // the W1 and W2 shards
  double buffers = 0;  // biases, activations, gradients
  double total() const { return weights + buffers; }
};

class MlpScheme {
 public:
  virtual ~MlpScheme() = default;
  virtual Scheme scheme() const = 0;
  // The token rows that x, y, dy and dx hold on this rank: all of them, or under sequence
  // parallelism this rank's block.
  virtual Block tokens_here() const = 0;
  virtual const Matrix& forward(const Matrix& x) = 0;  // x [tokens here, H] -> y, same shape
  virtual bool has_backward() const { return false; }
  // After forward(x): dy [tokens here, H] -> dx, same shape; fills gradients().
  virtual const Matrix& backward(const Matrix& dy);
  virtual Gradients gradients() const { return {}; }
  // This rank's parameters in the scheme's element type, to read or change in place (a real
  // model's optimizer would; faults.hpp plants mistakes this way), then parameters_changed().
  // Empty for the naive scheme, whose first layer is split by rows, and for the other type.
  virtual Parameters parameters() { return {}; }
  virtual ParametersB parameters_bf16() { return {}; }
  virtual void parameters_changed() {}
  virtual long weight_bytes() const = 0;  // this rank's share of the first layer and W2
};

// Builds `scheme` for this rank's place in `tp`, which it keeps for its collectives (the
// serial scheme is given a group of one).
std::unique_ptr<MlpScheme> make_scheme(Scheme scheme, const Config& cfg, TpComm& tp);

// What make_scheme allocates on the rank of a TP group that holds the most.
SchemeBytes scheme_bytes(Scheme scheme, const Config& cfg);

}  // namespace tp_mlp
