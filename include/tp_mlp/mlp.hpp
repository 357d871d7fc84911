// mlp: the MLP block Y = GeLU(X·W1 + b1)·W2 + b2, computed four ways from the same master
// weights (the biases only with --bias).
//
//   megatron     W1 split by columns, W2 by rows. Column-parallel W1 leaves every rank whole
//                columns of the pre-activation, so GeLU is local; row-parallel W2 takes exactly
//                those columns. One all-reduce of [tokens, H] forward (Megatron's g), one
//                backward, for dX (its f).
//   megatron-sp  the same with sequence parallelism: X and Y live split by tokens, so the
//                forward all-gathers X and reduce-scatters Y, and the backward does the
//                conjugates: the same bytes as the all-reduce, a T-th of the activations.
//   naive        W1 and W2 both split by rows (over H, then over 4H). Each rank's X·W1 is only a
//                partial sum, and GeLU is not linear, so the [tokens, 4H] pre-activation must be
//                all-reduced before GeLU; then a second all-reduce of [tokens, H]: 5x the bytes.
//                Forward only.
//   serial       the whole MLP on one rank, no communication: the baseline.
//
// All buffers are allocated by the constructors; forward() and backward() allocate nothing.
// Each scheme states beside its constructor what that constructor allocates (scheme_bytes),
// so that memory is checked before anything is allocated, by the same account.
#pragma once

#include <memory>

#include "tp_mlp/comm.hpp"
#include "tp_mlp/config.hpp"
#include "tp_mlp/matrix.hpp"

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

// This rank's slice of the model's gradients after backward(). The shard covers columns
// [first_column, first_column + width) of the 4H dimension.
struct Gradients {
  long first_column = 0;
  const Matrix* dw1 = nullptr;  // [H, width]
  const Matrix* dw2 = nullptr;  // [width, H]
  const Matrix* db1 = nullptr;  // [1, width], empty without --bias
  const Matrix* db2 = nullptr;  // [1, H], empty without --bias
};

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
  virtual long first_token() const { return 0; }
  virtual long tokens_here() const = 0;
  virtual const Matrix& forward(const Matrix& x) = 0;  // x [tokens here, H] -> y, same shape
  virtual bool has_backward() const { return false; }
  // After forward(x): dy [tokens here, H] -> dx, same shape; fills gradients().
  virtual const Matrix& backward(const Matrix& dy);
  virtual Gradients gradients() const { return {}; }
  virtual long weight_bytes() const = 0;  // this rank's share of W1 and W2
};

// Builds `scheme` for this rank's place in `tp`, which it keeps for its collectives (the
// serial scheme is given a group of one).
std::unique_ptr<MlpScheme> make_scheme(Scheme scheme, const Config& cfg, TpComm& tp);

// What make_scheme allocates on the rank of a TP group that holds the most.
SchemeBytes scheme_bytes(Scheme scheme, const Config& cfg);

}  // namespace tp_mlp
