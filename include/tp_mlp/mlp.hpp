// mlp: the MLP block Y = act(X·W1 + b1)·W2 + b2 (SwiGLU: act(X·W1 + b1, X·W3 + b3)), computed
// several ways from the same master weights (the biases only with --bias):
//
//   megatron          W1 (and W3) split by columns, W2 by rows (parallel_mlp.hpp): the
//                     activation is local, one all-reduce of [tokens, H] forward (Megatron's g),
//                     one backward, for dX (its f).
//   megatron-sp       the same with sequence parallelism: X and Y live split by tokens, so the
//                     forward all-gathers X and reduce-scatters Y, and the backward does the
//                     conjugates: the same bytes as the all-reduce, a T-th of the activations.
//   megatron-overlap  megatron with its all-reduces hidden behind computation: the forward in
//                     token chunks, each chunk's all-reduce in flight while the next computes;
//                     the backward's dX all-reduce behind the dW1 GEMM.
//   naive             W1 (W3) and W2 all split by rows (naive_mlp.hpp): each rank's X·W1 is only
//                     a partial sum, and the activation is not linear, so the [tokens, p·F]
//                     pre-activation must be all-reduced before it, then Y: 1 + p·F/H times the
//                     bytes (5x for GeLU at F = 4H). Forward only. The wrong way, on purpose.
//   serial            the whole MLP on one rank, no communication: the baseline.
//
// A scheme takes every buffer from the workspace in its constructor and fills its weights only
// in a real one; forward() and backward() allocate nothing.
#pragma once

#include <array>
#include <optional>
#include <type_traits>

#include "tp_mlp/bf16.hpp"
#include "tp_mlp/comm.hpp"
#include "tp_mlp/config.hpp"
#include "tp_mlp/matrix.hpp"
#include "tp_mlp/partition.hpp"
#include "tp_mlp/workspace.hpp"

namespace tp_mlp {

// Which ranks compute a scheme. The parallel schemes run on every rank of each TP group; the
// serial baseline on world rank 0 alone, while the others wait, so that it is timed with a
// core to itself.
class Placement {
 public:
  Placement(Scheme scheme, const World& world)
      : on_every_rank_(plain_of(scheme) != Scheme::serial),
        here_(on_every_rank_ || world.is_root()) {}
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
template <typename W, typename B>
struct ShardTensors {
  Block columns;
  W* w_in = nullptr;
  W* w_out = nullptr;
  B* b_in = nullptr;
  B* b_out = nullptr;
};
using Parameters = ShardTensors<Tensor<float>, Tensor<float>>;      // a --dtype fp32 scheme's
using ParametersB = ShardTensors<Tensor<bfloat16>, Tensor<float>>;  // a --dtype bf16 scheme's
using Gradients = ShardTensors<const Tensor<float>, const Tensor<float>>;

// A block's pair of linears (column_parallel_linear.hpp's `in`, row_parallel_linear.hpp's
// `out`) as this rank's shard of `columns`: its parameters as Shard (Parameters or
// ParametersB: empty where the linears' weights are of the other type), or its gradients.
template <typename Shard, typename In, typename Out>
Shard shard_parameters(Block columns, In& in, Out& out) {
  if constexpr (std::is_same_v<decltype(Shard::w_in), decltype(&in.weight())>)
    return {columns, &in.weight(), &out.weight(), in.has_bias() ? &in.bias() : nullptr,
            out.has_bias() ? &out.bias() : nullptr};
  return {};
}
template <typename In, typename Out>
Gradients shard_gradients(Block columns, const In& in, const Out& out) {
  return {columns, &in.weight_grad(), &out.weight_grad(), in.has_bias() ? &in.bias_grad() : nullptr,
          out.has_bias() ? &out.bias_grad() : nullptr};
}

// What a layer's backward leaves on a rank (--block layer): its attention's shard (columns:
// its query heads), its MLP's (columns of F), and each norm's weight and bias gradients (the
// bias's null for RMSNorm), whole on every rank.
struct NormGradients {
  const Tensor<float>* weight = nullptr;
  const Tensor<float>* bias = nullptr;
};
struct LayerGradients {
  Gradients attention, mlp;
  NormGradients norm1, norm2;
};

// What passes between a layer's parts on a rank (--block layer), [tokens here, H] each: each
// block's input and output, forward and backward, so that verification can check each block
// from the very input the scheme gave it (layer_verify.hpp).
enum class Stage {
  x,              // the layer's input, Norm1's
  attention_in,   // Norm1(X)
  attention_out,  // Attention(Norm1(X))
  h,              // X + Attention(Norm1(X)), Norm2's input
  mlp_in,         // Norm2(h)
  mlp_out,        // MLP(Norm2(h))
  mlp_dx,         // the MLP's backward from dY, Norm2's output gradient
  norm2_dx,       // Norm2's backward from it
  attention_dy,   // dh = dY + that
  attention_dx,   // attention's backward from dh, Norm1's output gradient
  norm1_dx,       // Norm1's backward from it
};
inline constexpr int kStages = 11;
using LayerStages = std::array<std::optional<ConstMatrixRef>, kStages>;

class MlpScheme {
 public:
  virtual ~MlpScheme() = default;
  virtual Scheme scheme() const = 0;
  // The token rows that x, y, dy and dx hold on this rank: all of them, or under sequence
  // parallelism this rank's block.
  virtual Block tokens_here() const = 0;
  // x [tokens here, H] -> y, same shape, valid until the next pass.
  virtual ConstMatrixRef forward(const ConstMatrixRef& x) = 0;
  virtual bool has_backward() const { return false; }
  // After forward(x): dy [tokens here, H] -> dx, same shape; fills gradients().
  virtual ConstMatrixRef backward(const ConstMatrixRef& dy);
  virtual Gradients gradients() { return {}; }
  virtual LayerGradients layer_gradients();          // a layer's (--block layer) only
  virtual LayerStages layer_stages() { return {}; }  // a layer's, of the last passes
  // This rank's parameters in the scheme's element type, to read or change in place (a real
  // model's optimizer would; faults.hpp plants mistakes this way), then parameters_changed().
  // Empty for the naive scheme, whose first layer is split by rows, and for the other type.
  virtual Parameters parameters() { return {}; }
  virtual ParametersB parameters_bf16() { return {}; }
  virtual void parameters_changed() {}
  // From now on, the first F block's partial sums of Y's first rows one ulp larger (an
  // invariant scheme; faults.hpp).
  virtual void plant_one_ulp();
  // A mistake in a block's own wiring (faults.hpp): attention's KV heads' gradients not summed
  // over the ranks holding them, or its query heads paired with the wrong KV head; the layer's
  // norms' gradients not summed under sequence parallelism.
  virtual void plant_block_fault(Fault fault);
  virtual long weight_bytes() const = 0;  // this rank's share of the first layer and W2
};

// Builds `scheme` in `ws` for this rank's place in `tp`, which it keeps for its collectives (the
// serial scheme is given a group of one); megatron-overlap's forward runs in `overlap_chunks`.
// With --block attention, the attention block's scheme (parallel_attention.hpp), with --block
// layer the layer's (parallel_layer.hpp): the interface is a block's, whichever block it is.
MlpScheme& make_scheme(Workspace& ws, Scheme scheme, const Config& cfg, TpComm& tp,
                       int overlap_chunks = 1);

}  // namespace tp_mlp
