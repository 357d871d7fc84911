// invariant_mlp: the --invariant schemes, block by block and tile by tile (see the header).
#include "tp_mlp/invariant_mlp.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "tp_mlp/activation.hpp"
#include "tp_mlp/init.hpp"

namespace tp_mlp {

// One block of F: its columns, the two layers' blocks, the activation between them, and what
// the backward needs. Every buffer is its own dense matrix: the products' shapes and strides
// are the block's, whichever rank holds it.
template <typename T>
struct InvariantMlp<T>::FBlock {
  Block columns;
  ColumnParallelLinear<T> first;  // [H, p·w]: the block's columns of W1 (and W3), side by side
  Tensor<float> act;              // [padded rows, w]
  Tensor<T> act_in;               // [padded rows, w], as T (bf16 only)
  RowParallelLinear<T> second;    // [w, H]: the block's rows of W2
  Tensor<float> dpre;             // [padded rows, p·w]
  Tensor<T> dpre_in;              // [padded rows, p·w], as T (bf16 only)
  FBlock* next = nullptr;

  FBlock(Workspace& ws, TpComm& tp, const Config& cfg, const InvariantBlocking& b, Block cols)
      : columns(cols),
        first(ws, tp, cfg.hidden_size, Projections::same(cols.count, cfg.projections()),
              options(cfg, b, cfg.bias)),
        act(ws.matrix<float>(b.padded_tokens, cols.count)),
        act_in(ws.matrix<T>(kIsFloat<T> ? 0 : b.padded_tokens, cols.count)),
        second(ws, cols.count, cols.count, cfg.hidden_size, options(cfg, b, false)),
        dpre(ws.matrix<float>(cfg.backward ? b.padded_tokens : 0, first.weight().cols())),
        dpre_in(ws.matrix<T>(cfg.backward && !kIsFloat<T> ? b.padded_tokens : 0,
                             first.weight().cols())) {}

  static LinearOptions options(const Config& cfg, const InvariantBlocking& b, bool bias) {
    return {bias, cfg.backward, {b.padded_tokens, int(b.tiles()), 1}, 1, true};
  }
  ConstRef<T> act_input() const { return gemm_input(act, act_in); }
  ConstRef<T> dpre_input() const { return gemm_input(dpre, dpre_in); }
  void round_dpre() {  // what dpre_input() reads, once dpre is there
    if constexpr (!kIsFloat<T>) to_bf16(dpre, dpre_in);
  }
};

template <typename T>
InvariantMlp<T>::InvariantMlp(Workspace& ws, Scheme scheme, const Config& cfg, TpComm& tp,
                              int chunks)
    : scheme_(scheme),
      tp_(tp),
      activation_(cfg.activation),
      backward_(cfg.backward),
      projections_(cfg.projections()),
      tokens_all_(cfg.tokens()),
      blocking_(InvariantBlocking::of(cfg)),
      columns_(blocking_.columns_of(tp.size(), tp.rank(), cfg.intermediate_size())),
      tokens_(tokens_outside(outside_of(scheme), cfg.tokens(), tp)),
      chunks_(chunks),
      x_entry_(ws, tp, outside_of(scheme), cfg.tokens(), cfg.hidden_size, blocking_.padded_tokens),
      dy_entry_(ws, tp, outside_of(scheme), cfg.backward ? cfg.tokens() : 0, cfg.hidden_size,
                cfg.backward ? blocking_.padded_tokens : 0),
      tile_(ws.matrix<float>(blocking_.row_tile, cfg.hidden_size)),
      row_max_(ws.matrix<float>(blocking_.padded_tokens, 1)),
      y_sum_(ws, tp, outside_of(scheme), cfg.tokens(), cfg.hidden_size,
             double(cfg.intermediate_size())),
      dx_sum_(ws, tp, outside_of(scheme), cfg.backward ? cfg.tokens() : 0, cfg.hidden_size,
              double(cfg.projections() * cfg.intermediate_size())),
      b2_(ws.matrix<float>(cfg.bias ? 1 : 0, cfg.hidden_size)),
      db2_(ws.matrix<float>(cfg.bias && cfg.backward ? 1 : 0, cfg.hidden_size)),
      dw_in_(
          ws.matrix<float>(cfg.backward ? cfg.hidden_size : 0, cfg.projections() * columns_.count)),
      dw2_(ws.matrix<float>(cfg.backward ? columns_.count : 0, cfg.hidden_size)),
      db_in_(
          ws.matrix<float>(cfg.backward && cfg.bias ? 1 : 0, cfg.projections() * columns_.count)) {
  const Block held = blocking_.blocks_of(tp.size(), tp.rank());
  FBlock** next = &blocks_;
  for (long j = held.first; j < held.end(); ++j) {
    *next = &ws.make<FBlock>(ws, tp, cfg, blocking_, blocking_.columns(j, cfg.intermediate_size()));
    next = &(*next)->next;
  }
  if (ws.planning()) return;  // the layout is all a plan needs
  const Block all_hidden = {0, cfg.hidden_size}, one_row = {0, 1};
  float maxima[2] = {0, 0};  // |W_in|, |W2|: this rank's, then the whole model's
  for (FBlock* b = blocks_; b; b = b->next) {
    fill_first_layer(b->first.weight(), cfg, LayerPart::weight, all_hidden, b->columns);
    fill_block(b->second.weight(), master_w2(cfg), cfg.seed, b->columns.first, 0);
    if (cfg.bias) fill_first_layer(b->first.bias(), cfg, LayerPart::bias, one_row, b->columns);
    b->first.prepare();
    b->second.prepare();
    maxima[0] = std::max(maxima[0], b->first.weight().template cast<float>().cwiseAbs().maxCoeff());
    maxima[1] =
        std::max(maxima[1], b->second.weight().template cast<float>().cwiseAbs().maxCoeff());
  }
  if (cfg.bias) fill_block(b2_, master_b2(cfg), cfg.seed, 0, 0);
  tp.all_reduce_max(maxima, 2);
  w_in_max_ = maxima[0];
  w2_max_ = maxima[1];
}

template <typename T>
template <typename Visit>
void InvariantMlp<T>::for_each_tile(Block rows, Visit visit) const {
  for (long first = rows.first; first < rows.end(); first += blocking_.row_tile)
    visit(Block{first, blocking_.row_tile});
}

template <typename T>
template <typename Of>
void InvariantMlp<T>::row_maxima(Block rows, Of of) {
  auto maxima = row_max_.middleRows(rows.first, rows.count);
  maxima.setZero();
  for (FBlock* b = blocks_; b; b = b->next)
    maxima =
        maxima.cwiseMax(of(*b).middleRows(rows.first, rows.count).cwiseAbs().rowwise().maxCoeff());
}

template <typename T>
long InvariantMlp<T>::weight_bytes() const {
  long elements = 0;
  for (const FBlock* b = blocks_; b; b = b->next)
    elements += long(b->first.weight().size() + b->second.weight().size());
  return elements * long(sizeof(T));
}

template <typename T>
void InvariantMlp<T>::first_layer(const ConstRef<T>& x) {
  const Block all = {0, blocking_.padded_tokens};
  for_each_tile(all, [&](Block tile) {  // column-parallel, then the activation: local
    for (FBlock* b = blocks_; b; b = b->next) {
      b->first.forward(x, tile);
      auto act = b->act.middleRows(tile.first, tile.count);
      activate(activation_, b->first.output().middleRows(tile.first, tile.count), act);
      if constexpr (!kIsFloat<T>) to_bf16(act, b->act_in.middleRows(tile.first, tile.count));
    }
  });
  // Every row's grid, from its largest activation anywhere in F: one MAX all-reduce, before
  // any partial sum leaves (a small collective queued behind a large one in flight would wait
  // for it, over a slow link).
  row_maxima(all, [](FBlock& b) -> const Tensor<float>& { return b.act; });
  y_sum_.set_grid(all, row_max_.data(), w2_max_);
}

template <typename T>
void InvariantMlp<T>::second_layer(Block rows) {
  for_each_tile(rows, [&](Block tile) {  // row-parallel: each block's partial sum, exactly added
    y_sum_.clear(tile);
    for (FBlock* b = blocks_; b; b = b->next) {
      b->second.forward(b->act_input(), tile, tile_);
      if (planted_ && b->columns.first == 0 && tile.first == 0)  // one-ulp (faults.hpp)
        tile_ = tile_.unaryExpr(
            [](float v) { return std::nextafter(v, std::numeric_limits<float>::infinity()); });
      y_sum_.add(tile_, tile.first);
      // Whatever is in flight moves on: after every block, not every tile, since a tile may
      // be a whole chunk, and a collective moves only inside MPI calls.
      tp_.progress();
    }
  });
}

template <typename T>
ConstMatrixRef InvariantMlp<T>::forward(const ConstMatrixRef& x_here) {
  x_.emplace(x_entry_.enter(x_here));  // f: identity; f̄: all-gather; padded with zeros
  first_layer(*x_);
  long computed = 0;  // rows whose tiles are done
  for (int c = 0; c < chunks_; ++c) {
    const Block chunk = block_of(tokens_all_, chunks_, c);
    const long through = blocking_.covered(chunk.end());
    if (through > computed) second_layer({computed, through - computed});
    computed = std::max(computed, through);
    if (chunks_ > 1) y_sum_.start_leaving(chunk);  // g of this chunk, while the next computes
  }
  MatrixRef y = chunks_ > 1 ? y_sum_.finish_leaving() : y_sum_.leave();  // g, ḡ: exact
  if (b2_.size() > 0) y.rowwise() += b2_.row(0);                         // once, after the sum
  if constexpr (!kIsFloat<T>) round_to_bf16(y);
  return y;
}

template <typename T>
ConstMatrixRef InvariantMlp<T>::backward(const ConstMatrixRef& dy_here) {
  const ConstRef<T> dy = dy_entry_.enter(dy_here);  // g's backward: identity; ḡ's: all-gather
  if (db2_.size() > 0) {                            // row after row: the same order at every T
    db2_.setZero();
    for (long r = 0; r < dy.rows(); ++r) db2_ += dy.row(r).template cast<float>();
  }
  for (FBlock* b = blocks_; b; b = b->next) {
    b->second.backward(b->act_input(), dy);  // dW2 = actᵀ·dY, dact = dY·W2ᵀ: the block's own
    activate_backward(activation_, b->first.output(), b->second.input_grad(), b->dpre);
  }
  const Block all = {0, blocking_.padded_tokens};
  row_maxima(all, [](FBlock& b) -> const Tensor<float>& { return b.dpre; });
  dx_sum_.set_grid(all, row_max_.data(), w_in_max_);
  for (FBlock* b = blocks_; b; b = b->next) b->round_dpre();
  for_each_tile(all, [&](Block tile) {  // dX's partial sums, block by block, exactly added
    dx_sum_.clear(tile);
    for (FBlock* b = blocks_; b; b = b->next) {
      b->first.backward_input(b->dpre_input(), tile, tile_);
      dx_sum_.add(tile_, tile.first);
    }
  });
  if (chunks_ > 1) dx_sum_.start_leaving({0, dy_here.rows()});  // f's backward, behind dW_in
  for (FBlock* b = blocks_; b; b = b->next)
    b->first.backward_weights(*x_, b->dpre_input(), b->dpre);
  MatrixRef dx = chunks_ > 1 ? dx_sum_.finish_leaving() : dx_sum_.leave();
  if constexpr (!kIsFloat<T>) round_to_bf16(dx);
  return dx;
}

template <typename T>
Gradients InvariantMlp<T>::gradients() {
  for (FBlock* b = blocks_; b; b = b->next) {
    const long at = b->columns.first - columns_.first, w = b->columns.count;
    for (long j = 0; j < projections_; ++j) {  // [gate_b | up_b] into [dW1 | dW3]'s columns
      dw_in_.middleCols(j * columns_.count + at, w) = b->first.weight_grad().middleCols(j * w, w);
      if (db_in_.size() > 0)
        db_in_.middleCols(j * columns_.count + at, w) = b->first.bias_grad().middleCols(j * w, w);
    }
    dw2_.middleRows(at, w) = b->second.weight_grad();
  }
  return {columns_, &dw_in_, &dw2_, db_in_.size() > 0 ? &db_in_ : nullptr,
          db2_.size() > 0 ? &db2_ : nullptr};
}

template class InvariantMlp<float>;
template class InvariantMlp<bfloat16>;

}  // namespace tp_mlp
