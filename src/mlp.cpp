// mlp: the scheme factory (see mlp.hpp).
#include "tp_mlp/mlp.hpp"

#include <stdexcept>

#include "tp_mlp/invariant_attention.hpp"
#include "tp_mlp/invariant_mlp.hpp"
#include "tp_mlp/naive_mlp.hpp"
#include "tp_mlp/parallel_attention.hpp"
#include "tp_mlp/parallel_layer.hpp"
#include "tp_mlp/parallel_mlp.hpp"

namespace tp_mlp {

ConstMatrixRef MlpScheme::backward(const ConstMatrixRef&) {
  throw std::logic_error("this scheme has no backward pass");
}

LayerGradients MlpScheme::layer_gradients() {
  throw std::logic_error("only a layer has a layer's gradients");
}

void MlpScheme::plant_one_ulp() {
  throw std::logic_error("only an invariant scheme sums partial sums it can be planted in");
}

void MlpScheme::plant_block_fault(Fault) {
  throw std::logic_error(
      "only attention and the layer have wiring of their own to plant a fault in");
}

namespace {

template <typename T>
MlpScheme& make_of_type(Workspace& ws, Scheme scheme, const Config& cfg, TpComm& tp,
                        int overlap_chunks) {
  if (cfg.block == BlockKind::attention && is_invariant(scheme))
    return ws.make<InvariantAttention<T>>(ws, scheme, cfg, tp);
  if (cfg.block == BlockKind::attention) return ws.make<ParallelAttention<T>>(ws, scheme, cfg, tp);
  if (cfg.block == BlockKind::layer && is_invariant(scheme))
    return ws.make<InvariantLayer<T>>(ws, scheme, cfg, tp, overlap_chunks);
  if (cfg.block == BlockKind::layer)
    return ws.make<ParallelLayer<T>>(ws, scheme, cfg, tp, overlap_chunks);
  if (scheme == Scheme::naive) return ws.make<NaiveMlp<T>>(ws, cfg, tp);
  if (is_invariant(scheme)) return ws.make<InvariantMlp<T>>(ws, scheme, cfg, tp, overlap_chunks);
  return ws.make<ParallelMlp<T>>(ws, scheme, cfg, tp, overlap_chunks);
}

}  // namespace

MlpScheme& make_scheme(Workspace& ws, Scheme scheme, const Config& cfg, TpComm& tp,
                       int overlap_chunks) {
  if (cfg.dtype == DType::bf16) return make_of_type<bfloat16>(ws, scheme, cfg, tp, overlap_chunks);
  return make_of_type<float>(ws, scheme, cfg, tp, overlap_chunks);
}

}  // namespace tp_mlp
