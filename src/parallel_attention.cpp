// parallel_attention: the attention block split by heads, composed of the parts (see
// parallel_attention.hpp).
#include "tp_mlp/parallel_attention.hpp"

#include "tp_mlp/init.hpp"

namespace tp_mlp {
namespace {

// The replica buffer's rows: dWk's and dWv's H, and their biases' gradient under them.
long replica_rows(const Config& cfg) { return cfg.hidden_size + (cfg.bias ? 1 : 0); }

}  // namespace

template <typename T>
ParallelAttention<T>::ParallelAttention(Workspace& ws, Scheme scheme, const Config& cfg, TpComm& tp)
    : scheme_(scheme),
      cfg_(cfg),
      tp_(tp),
      backward_(cfg.backward),
      tokens_(cfg.tokens()),
      head_dim_(cfg.head_size()),
      tokens_here_(tokens_outside(outside_of(scheme), cfg.tokens(), tp)),
      sharding_(cfg.heads(), cfg.kv_heads(), tp.size()),
      heads_(sharding_.of(tp.rank())),
      x_entry_(ws, tp, outside_of(scheme), cfg.tokens(), cfg.hidden_size),
      qkv_(ws, tp, cfg.hidden_size,
           Projections{heads_.query.count * head_dim_, heads_.kv.count * head_dim_,
                       heads_.kv.count * head_dim_},
           {cfg.bias, cfg.backward, Chunking::whole(cfg.tokens())}),
      rope_(ws, cfg.seq_len, head_dim_, cfg.rope_base()),
      attention_(
          ws, cfg.batch_size, cfg.seq_len, head_dim_, heads_.query.count,
          [&](long h) { return heads_.local_kv_of(h, cfg.heads(), cfg.kv_heads()); }, cfg.backward),
      o_(ws.matrix<float>(cfg.tokens(), heads_.query.count * head_dim_)),
      o_in_(ws.matrix<T>(kIsFloat<T> ? 0 : cfg.tokens(), o_.cols())),
      out_(ws, heads_.query.count * head_dim_, heads_.query.count * head_dim_, cfg.hidden_size,
           {cfg.bias, cfg.backward, Chunking::whole(cfg.tokens())}),
      y_exit_(ws, tp, outside_of(scheme), cfg.reduction(), cfg.tokens(), cfg.hidden_size),
      dy_entry_(ws, tp, outside_of(scheme), cfg.backward ? cfg.tokens() : 0, cfg.hidden_size),
      dqkv_(ws.matrix<float>(cfg.backward ? cfg.tokens() : 0, qkv_.weight().cols())),
      dqkv_in_(ws.matrix<T>(kIsFloat<T> ? 0 : dqkv_.rows(), dqkv_.cols())),
      replicas_(ws.matrix<float>(cfg.backward ? replica_rows(cfg) : 0,
                                 2 * sharding_.replicated_count() * head_dim_)),
      dx_exit_(ws, tp, outside_of(scheme), cfg.reduction(), cfg.backward ? cfg.tokens() : 0,
               cfg.hidden_size) {
  if (ws.planning()) return;  // the layout is all a plan needs
  const Block all_hidden = {0, cfg.hidden_size}, one_row = {0, 1};
  fill_qkv(qkv_.weight(), cfg, LayerPart::weight, all_hidden, heads_.query, heads_.kv);
  fill_block(out_.weight(), master_wo(cfg), cfg.seed, heads_.query.first * head_dim_, 0);
  if (cfg.bias) {
    fill_qkv(qkv_.bias(), cfg, LayerPart::bias, one_row, heads_.query, heads_.kv);
    fill_block(out_.bias(), master_bo(cfg), cfg.seed, 0, 0);
  }
  parameters_changed();
}

template <typename T>
long ParallelAttention<T>::weight_bytes() const {
  return long(sizeof(T)) * long(qkv_.weight().size() + out_.weight().size());
}

template <typename T>
Parameters ParallelAttention<T>::parameters() {
  return shard_parameters<Parameters>(heads_.query, qkv_, out_);
}

template <typename T>
ParametersB ParallelAttention<T>::parameters_bf16() {
  return shard_parameters<ParametersB>(heads_.query, qkv_, out_);
}

template <typename T>
void ParallelAttention<T>::parameters_changed() {
  qkv_.prepare();
  out_.prepare();
}

template <typename T>
Gradients ParallelAttention<T>::gradients() {
  return shard_gradients(heads_.query, qkv_, out_);
}

template <typename T>
void ParallelAttention<T>::plant_block_fault(Fault fault) {
  if (fault == Fault::kv_grad_not_summed) {
    sum_replicas_ = false;
    return;
  }
  // wrong-kv-head: each of this rank's KV head slots loaded with the next KV head's Wk and Wv
  // columns (and biases), as an off-by-one in ⌊q·K/N⌋ would pair them.
  const long d = head_dim_, K = cfg_.kv_heads();
  for (long i = 0; i < heads_.kv.count; ++i) {
    const long next = (heads_.kv.first + i + 1) % K;
    fill_block(k_of(qkv_.weight()).middleCols(i * d, d), master_wk(cfg_), cfg_.seed, 0, next * d);
    fill_block(v_of(qkv_.weight()).middleCols(i * d, d), master_wv(cfg_), cfg_.seed, 0, next * d);
    if (!qkv_.has_bias()) continue;
    fill_block(k_of(qkv_.bias()).middleCols(i * d, d), master_bk(cfg_), cfg_.seed, 0, next * d);
    fill_block(v_of(qkv_.bias()).middleCols(i * d, d), master_bv(cfg_), cfg_.seed, 0, next * d);
  }
  parameters_changed();
}

template <typename T>
ConstMatrixRef ParallelAttention<T>::forward(const ConstMatrixRef& x_here) {
  x_.emplace(x_entry_.enter(x_here));  // f: the identity (f̄: all-gather the tokens)
  qkv_.forward(*x_, {0, tokens_});     // [Q | K | V] of this rank's heads, no communication
  Tensor<float>& qkv = qkv_.output();
  rope_.forward(q_of(qkv));  // rotated in place: the backward reads them as attention did
  rope_.forward(k_of(qkv));
  attention_.forward(q_of(qkv), k_of(qkv), v_of(qkv), o_);
  if constexpr (!kIsFloat<T>) to_bf16(o_, o_in_);  // what Wo's GEMM reads, and dWo's
  // A partial sum of Y (zeros on a rank with no head), then g: all-reduce (ḡ: reduce-scatter)
  out_.forward(gemm_input(o_, o_in_), {0, tokens_});
  MatrixRef y = y_exit_.leave(out_.partial());
  out_.add_bias(y);  // once, after the sum
  if constexpr (!kIsFloat<T>) round_to_bf16(y);
  return y;
}

template <typename T>
ConstMatrixRef ParallelAttention<T>::backward(const ConstMatrixRef& dy_here) {
  const ConstRef<T> dy = dy_entry_.enter(dy_here);  // g's backward (ḡ's: all-gather)
  out_.backward(gemm_input(o_, o_in_), dy);         // dWo = Oᵀ·dY, dbo, dO = dY·Woᵀ
  const Tensor<float>& qkv = qkv_.output();
  attention_.backward(q_of(qkv), k_of(qkv), v_of(qkv), out_.input_grad(), q_of(dqkv_), k_of(dqkv_),
                      v_of(dqkv_));
  rope_.backward(q_of(dqkv_));  // the rotations' gradients turned back, in place
  rope_.backward(k_of(dqkv_));
  if constexpr (!kIsFloat<T>) to_bf16(dqkv_, dqkv_in_);  // what dX's and dW's GEMMs read
  const ConstRef<T> dqkv = gemm_input(dqkv_, dqkv_in_);
  MatrixRef dx_partial = qkv_.backward_input(dqkv);  // dX's partial sum = dQKV·W_qkvᵀ
  qkv_.backward_weights(*x_, dqkv, dqkv_);           // dW_qkv = Xᵀ·dQKV, db_qkv (from fp32)
  if (sum_replicas_) sum_replicas();
  MatrixRef dx = dx_exit_.leave(dx_partial);  // f's backward: all-reduce (f̄'s: reduce-scatter)
  if constexpr (!kIsFloat<T>) round_to_bf16(dx);
  return dx;
}

template <typename T>
void ParallelAttention<T>::sum_replicas() {
  if (replicas_.size() == 0) return;  // no KV head is held by two ranks
  const long d = head_dim_, H = cfg_.hidden_size;
  const long slots = replicas_.cols() / (2 * d);  // R, as the buffer was sized
  Tensor<float>& dw = qkv_.weight_grad();
  // Slot s holds replicated head s's dWk columns at [s·d, (s+1)·d) and its dWv columns R·d
  // further; a rank puts its own part where it holds the head, zeros elsewhere.
  auto each_held = [&](auto visit) {
    for (long i = 0; i < heads_.kv.count; ++i) {
      const long slot = sharding_.replica_slot(heads_.kv.first + i);
      if (slot >= 0) visit(i * d, slot * d, (slots + slot) * d);
    }
  };
  replicas_.setZero();
  each_held([&](long local, long k_at, long v_at) {
    replicas_.block(0, k_at, H, d) = k_of(dw).middleCols(local, d);
    replicas_.block(0, v_at, H, d) = v_of(dw).middleCols(local, d);
    if (!qkv_.has_bias()) return;
    replicas_.block(H, k_at, 1, d) = k_of(qkv_.bias_grad()).middleCols(local, d);
    replicas_.block(H, v_at, 1, d) = v_of(qkv_.bias_grad()).middleCols(local, d);
  });
  tp_.all_reduce_sum(replicas_.data(), replicas_.size());
  each_held([&](long local, long k_at, long v_at) {
    k_of(dw).middleCols(local, d) = replicas_.block(0, k_at, H, d);
    v_of(dw).middleCols(local, d) = replicas_.block(0, v_at, H, d);
    if (!qkv_.has_bias()) return;
    k_of(qkv_.bias_grad()).middleCols(local, d) = replicas_.block(H, k_at, 1, d);
    v_of(qkv_.bias_grad()).middleCols(local, d) = replicas_.block(H, v_at, 1, d);
  });
}

template class ParallelAttention<float>;
template class ParallelAttention<bfloat16>;

}  // namespace tp_mlp
