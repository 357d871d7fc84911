// invariant_attention: the attention block head by head, its sums over heads exact (see the
// header).
#include "tp_mlp/invariant_attention.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "tp_mlp/init.hpp"

namespace tp_mlp {
namespace {

// Every product runs on all the tokens at once, its partial sums into the caller's buffer.
LinearOptions head_options(const Config& cfg, bool bias) {
  return {bias, cfg.backward, Chunking::whole(cfg.tokens()), 1, /*partials_to_caller=*/true};
}

template <typename M>
void raise_to_max(float& max, const M& m) {
  max = std::max(max, m.template cast<float>().cwiseAbs().maxCoeff());
}

}  // namespace

// One KV head this rank holds: its own [Wk | Wv] and its gradient's buffers.
template <typename T>
struct InvariantAttention<T>::KvHead {
  long head;                   // its number in the model
  ColumnParallelLinear<T> kv;  // [H, 2d]: [Wk | Wv]'s columns of the head (and [bk | bv]'s)
  Tensor<float> dkv;           // [tokens, 2d]: its whole [dK | dV], over all its query heads
  Tensor<T> dkv_in;            // [tokens, 2d], as T (bf16 only)
  KvHead* next = nullptr;

  KvHead(Workspace& ws, TpComm& tp, const Config& cfg, long number)
      : head(number),
        kv(ws, tp, cfg.hidden_size, Projections{cfg.head_size(), cfg.head_size()},
           head_options(cfg, cfg.bias)),
        dkv(ws.matrix<float>(cfg.backward ? cfg.tokens() : 0, 2 * cfg.head_size())),
        dkv_in(ws.matrix<T>(cfg.backward && !kIsFloat<T> ? cfg.tokens() : 0, dkv.cols())) {}
};

// One query head: every buffer its own dense matrix, whichever rank holds it.
template <typename T>
struct InvariantAttention<T>::QueryHead {
  long head;                  // its number in the model
  long local;                 // its number on this rank, as attention_ knows it
  KvHead* kv;                 // the KV head it uses
  ColumnParallelLinear<T> q;  // [H, d]: Wq's columns of the head (and bq's)
  Tensor<float> o;            // [tokens, d]: attention's output
  Tensor<T> o_in;             // [tokens, d], as T (bf16 only)
  RowParallelLinear<T> out;   // [d, H]: Wo's rows of the head
  Tensor<float> dq;           // [tokens, d] (backward only)
  Tensor<T> dq_in;            // [tokens, d], as T (bf16 only)
  Tensor<float> dkv;          // [tokens, 2d]: this head's part of its KV head's [dK | dV]
  QueryHead* next = nullptr;

  QueryHead(Workspace& ws, TpComm& tp, const Config& cfg, long number, long on_rank, KvHead* uses)
      : head(number),
        local(on_rank),
        kv(uses),
        q(ws, tp, cfg.hidden_size, Projections{cfg.head_size()}, head_options(cfg, cfg.bias)),
        o(ws.matrix<float>(cfg.tokens(), cfg.head_size())),
        o_in(ws.matrix<T>(kIsFloat<T> ? 0 : cfg.tokens(), cfg.head_size())),
        out(ws, cfg.head_size(), cfg.head_size(), cfg.hidden_size, head_options(cfg, false)),
        dq(ws.matrix<float>(cfg.backward ? cfg.tokens() : 0, cfg.head_size())),
        dq_in(ws.matrix<T>(cfg.backward && !kIsFloat<T> ? cfg.tokens() : 0, cfg.head_size())),
        dkv(ws.matrix<float>(cfg.backward ? cfg.tokens() : 0, 2 * cfg.head_size())) {}
};

template <typename T>
InvariantAttention<T>::InvariantAttention(Workspace& ws, Scheme scheme, const Config& cfg,
                                          TpComm& tp)
    : scheme_(scheme),
      tp_(tp),
      backward_(cfg.backward),
      tokens_(cfg.tokens()),
      head_dim_(cfg.head_size()),
      tokens_here_(tokens_outside(outside_of(scheme), cfg.tokens(), tp)),
      sharding_(cfg.heads(), cfg.kv_heads(), tp.size()),
      heads_(sharding_.of(tp.rank())),
      x_entry_(ws, tp, outside_of(scheme), cfg.tokens(), cfg.hidden_size),
      dy_entry_(ws, tp, outside_of(scheme), cfg.backward ? cfg.tokens() : 0, cfg.hidden_size),
      rope_(ws, cfg.seq_len, head_dim_, cfg.rope_base()),
      attention_(
          ws, cfg.batch_size, cfg.seq_len, head_dim_, heads_.query.count,
          [&](long h) { return heads_.local_kv_of(h, cfg.heads(), cfg.kv_heads()); }, cfg.backward),
      partial_(ws.matrix<float>(cfg.tokens(), cfg.hidden_size)),
      row_max_(ws.matrix<float>(cfg.tokens(), 1)),
      y_sum_(ws, tp, outside_of(scheme), cfg.tokens(), cfg.hidden_size,
             double(cfg.heads() * head_dim_)),
      kv_sum_(ws, tp, Outside::replicated, cfg.backward ? cfg.tokens() : 0,
              2 * cfg.kv_heads() * head_dim_, double(cfg.heads()) / double(cfg.kv_heads())),
      dx_sum_(ws, tp, outside_of(scheme), cfg.backward ? cfg.tokens() : 0, cfg.hidden_size,
              double((cfg.heads() + 2 * cfg.kv_heads()) * head_dim_)),
      bo_(ws.matrix<float>(cfg.bias ? 1 : 0, cfg.hidden_size)),
      dbo_(ws.matrix<float>(cfg.bias && cfg.backward ? 1 : 0, cfg.hidden_size)),
      dw_in_(ws.matrix<float>(cfg.backward ? cfg.hidden_size : 0,
                              (heads_.query.count + 2 * heads_.kv.count) * head_dim_)),
      db_in_(ws.matrix<float>(cfg.backward && cfg.bias ? 1 : 0, dw_in_.cols())),
      dw_out_(
          ws.matrix<float>(cfg.backward ? heads_.query.count * head_dim_ : 0, cfg.hidden_size)) {
  KvHead** next_kv = &kv_;
  for (long kv = heads_.kv.first; kv < heads_.kv.end(); ++kv) {
    *next_kv = &ws.make<KvHead>(ws, tp, cfg, kv);
    next_kv = &(*next_kv)->next;
  }
  QueryHead** next = &query_;
  for (long h = 0; h < heads_.query.count; ++h) {
    KvHead* kv = kv_;
    for (long i = heads_.local_kv_of(h, cfg.heads(), cfg.kv_heads()); i > 0; --i) kv = kv->next;
    *next = &ws.make<QueryHead>(ws, tp, cfg, heads_.query.first + h, h, kv);
    next = &(*next)->next;
  }
  if (ws.planning()) return;  // the layout is all a plan needs
  const Block all_hidden = {0, cfg.hidden_size}, one_row = {0, 1}, none = {0, 0};
  float maxima[2] = {0, 0};  // |Wq|, |Wk|, |Wv|; |Wo|: this rank's, then the whole model's
  for (KvHead* k = kv_; k; k = k->next) {
    fill_qkv(k->kv.weight(), cfg, LayerPart::weight, all_hidden, none, {k->head, 1});
    if (cfg.bias) fill_qkv(k->kv.bias(), cfg, LayerPart::bias, one_row, none, {k->head, 1});
    k->kv.prepare();
    raise_to_max(maxima[0], k->kv.weight());
  }
  for (QueryHead* q = query_; q; q = q->next) {
    fill_qkv(q->q.weight(), cfg, LayerPart::weight, all_hidden, {q->head, 1}, none);
    if (cfg.bias) fill_qkv(q->q.bias(), cfg, LayerPart::bias, one_row, {q->head, 1}, none);
    fill_block(q->out.weight(), master_wo(cfg), cfg.seed, q->head * head_dim_, 0);
    q->q.prepare();
    q->out.prepare();
    raise_to_max(maxima[0], q->q.weight());
    raise_to_max(maxima[1], q->out.weight());
  }
  if (cfg.bias) fill_block(bo_, master_bo(cfg), cfg.seed, 0, 0);
  tp.all_reduce_max(maxima, 2);
  w_in_max_ = maxima[0];
  wo_max_ = maxima[1];
}

template <typename T>
long InvariantAttention<T>::weight_bytes() const {
  long elements = 0;
  for (const KvHead* k = kv_; k; k = k->next) elements += long(k->kv.weight().size());
  for (const QueryHead* q = query_; q; q = q->next)
    elements += long(q->q.weight().size() + q->out.weight().size());
  return elements * long(sizeof(T));
}

template <typename T>
template <typename Head, typename Of>
void InvariantAttention<T>::row_maxima(Head* heads, Of of) {
  for (Head* h = heads; h; h = h->next)
    row_max_ = row_max_.cwiseMax(of(*h).cwiseAbs().rowwise().maxCoeff());
}

template <typename T>
ConstMatrixRef InvariantAttention<T>::forward(const ConstMatrixRef& x_here) {
  const long d = head_dim_;
  const Block all = {0, tokens_};
  x_.emplace(x_entry_.enter(x_here));      // f: identity; f̄: all-gather
  for (KvHead* k = kv_; k; k = k->next) {  // every holder of a KV head alike
    k->kv.forward(*x_, all);
    rope_.forward(k->kv.output().leftCols(d));
  }
  for (QueryHead* q = query_; q; q = q->next) {
    q->q.forward(*x_, all);
    rope_.forward(q->q.output());
    const Tensor<float>& kv = q->kv->kv.output();
    attention_.forward_head(q->local, q->q.output(), kv.leftCols(d), kv.rightCols(d), q->o);
    if constexpr (!kIsFloat<T>) to_bf16(q->o, q->o_in);
  }
  // Every row's grid, from its largest O anywhere in the model: one MAX all-reduce.
  row_max_.setZero();
  row_maxima(query_, [](QueryHead& q) -> const Tensor<float>& { return q.o; });
  y_sum_.set_grid(all, row_max_.data(), wo_max_);
  y_sum_.clear(all);
  for (QueryHead* q = query_; q; q = q->next) {  // row-parallel Wo: each head's partial sum
    q->out.forward(gemm_input(q->o, q->o_in), all, partial_);
    if (planted_ && q->head == 0)  // one-ulp (faults.hpp)
      partial_ = partial_.unaryExpr(
          [](float v) { return std::nextafter(v, std::numeric_limits<float>::infinity()); });
    y_sum_.add(partial_, 0);
  }
  MatrixRef y = y_sum_.leave();                   // g, ḡ: exact
  if (bo_.size() > 0) y.rowwise() += bo_.row(0);  // once, after the sum
  if constexpr (!kIsFloat<T>) round_to_bf16(y);
  return y;
}

template <typename T>
void InvariantAttention<T>::sum_kv_gradients() {
  const long d = head_dim_;
  const Block all = {0, tokens_};
  row_max_.setZero();
  row_maxima(query_, [](QueryHead& q) -> const Tensor<float>& { return q.dkv; });
  kv_sum_.set_grid(all, row_max_.data(), 1.0);  // N/K parts, each within its row's max
  kv_sum_.clear(all);
  for (QueryHead* q = query_; q; q = q->next) kv_sum_.add(q->dkv, 0, q->kv->head * 2 * d);
  // A KV head that is not replicated has all its query heads here: its sum is made already.
  const MatrixRef sum =
      sharding_.replicated_count() > 0 ? kv_sum_.leave() : kv_sum_.leave_unsummed();
  for (KvHead* k = kv_; k; k = k->next) {
    k->dkv = sum.middleCols(k->head * 2 * d, 2 * d);
    if constexpr (!kIsFloat<T>) to_bf16(k->dkv, k->dkv_in);  // what dX's and dW's GEMMs read
  }
}

template <typename T>
ConstMatrixRef InvariantAttention<T>::backward(const ConstMatrixRef& dy_here) {
  const long d = head_dim_;
  const Block all = {0, tokens_};
  const ConstRef<T> dy = dy_entry_.enter(dy_here);  // g's backward: identity; ḡ's: all-gather
  if (dbo_.size() > 0) {                            // row after row: the same order at every T
    dbo_.setZero();
    for (long r = 0; r < dy.rows(); ++r) dbo_ += dy.row(r).template cast<float>();
  }
  for (QueryHead* q = query_; q; q = q->next) {
    q->out.backward(gemm_input(q->o, q->o_in), dy);  // dWo_h = O_hᵀ·dY, dO_h = dY·Wo_hᵀ
    const Tensor<float>& kv = q->kv->kv.output();
    q->dkv.setZero();
    attention_.backward_head(q->local, q->q.output(), kv.leftCols(d), kv.rightCols(d),
                             q->out.input_grad(), q->dq, q->dkv.leftCols(d), q->dkv.rightCols(d));
    rope_.backward(q->dq);  // the rotations' gradients turned back, in place
    rope_.backward(q->dkv.leftCols(d));
    if constexpr (!kIsFloat<T>) to_bf16(q->dq, q->dq_in);
  }
  sum_kv_gradients();
  // dX's grid from every input of its products, then its N + K partial sums, exactly added:
  // a KV head's by the rank that holds its first query head alone.
  row_max_.setZero();
  row_maxima(query_, [](QueryHead& q) -> const Tensor<float>& { return q.dq; });
  row_maxima(kv_, [](KvHead& k) -> const Tensor<float>& { return k.dkv; });
  dx_sum_.set_grid(all, row_max_.data(), w_in_max_);
  dx_sum_.clear(all);
  for (QueryHead* q = query_; q; q = q->next) {
    q->q.backward_input(gemm_input(q->dq, q->dq_in), all, partial_);
    dx_sum_.add(partial_, 0);
  }
  for (KvHead* k = kv_; k; k = k->next) {
    if (sharding_.holders(k->head).first != tp_.rank()) continue;
    k->kv.backward_input(gemm_input(k->dkv, k->dkv_in), all, partial_);
    dx_sum_.add(partial_, 0);
  }
  for (QueryHead* q = query_; q; q = q->next)  // dWq_h = Xᵀ·dQ_h, dbq_h
    q->q.backward_weights(*x_, gemm_input(q->dq, q->dq_in), q->dq);
  for (KvHead* k = kv_; k; k = k->next)  // dW_kv = Xᵀ·[dK | dV]_kv: the same on every holder
    k->kv.backward_weights(*x_, gemm_input(k->dkv, k->dkv_in), k->dkv);
  MatrixRef dx = dx_sum_.leave();  // f's backward (f̄'s): exact
  if constexpr (!kIsFloat<T>) round_to_bf16(dx);
  return dx;
}

template <typename T>
Gradients InvariantAttention<T>::gradients() {
  const long d = head_dim_, nq = heads_.query.count, nkv = heads_.kv.count;
  long i = 0;
  for (QueryHead* q = query_; q; q = q->next, ++i) {  // [dWq | dWk | dWv]'s columns, dWo's rows
    dw_in_.middleCols(i * d, d) = q->q.weight_grad();
    if (db_in_.size() > 0) db_in_.middleCols(i * d, d) = q->q.bias_grad();
    dw_out_.middleRows(i * d, d) = q->out.weight_grad();
  }
  long j = 0;
  for (KvHead* k = kv_; k; k = k->next, ++j)
    for (long side = 0; side < 2; ++side) {  // K, then V
      const long at = (nq + side * nkv + j) * d;
      dw_in_.middleCols(at, d) = k->kv.weight_grad().middleCols(side * d, d);
      if (db_in_.size() > 0) db_in_.middleCols(at, d) = k->kv.bias_grad().middleCols(side * d, d);
    }
  return {heads_.query, &dw_in_, &dw_out_, db_in_.size() > 0 ? &db_in_ : nullptr,
          dbo_.size() > 0 ? &dbo_ : nullptr};
}

template class InvariantAttention<float>;
template class InvariantAttention<bfloat16>;

}  // namespace tp_mlp
