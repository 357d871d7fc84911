// column_row_mlp: megatron, megatron-sp, megatron-overlap and serial (see column_row_mlp.hpp).
#include "tp_mlp/column_row_mlp.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "tp_mlp/activation.hpp"
#include "tp_mlp/init.hpp"

namespace tp_mlp {
namespace {

constexpr Bf16Gemm::B kWeights = Bf16Gemm::B::weights;
constexpr Bf16Gemm::B kVaries = Bf16Gemm::B::varies;

template <typename T>
constexpr bool kFloat = std::is_same_v<T, float>;

template <typename M>
long bytes_of(const M& m) {
  return long(m.size() * long(sizeof(typename M::Scalar)));
}

// Under sequence parallelism x and y hold a block of the tokens; otherwise all of them.
Block tokens_held(Scheme scheme, const Config& cfg, const TpComm& tp) {
  if (scheme != Scheme::megatron_sp) return {0, cfg.tokens()};
  return block_of(cfg.tokens(), tp.size(), tp.rank());
}

// `in` as a GEMM input of element type T: itself for float, rounded into `buffer` for bf16.
template <typename T>
const RowMajor<T>& as_input(const Matrix& in, RowMajor<T>& buffer) {
  if constexpr (kFloat<T>) {
    return in;
  } else {
    to_bf16(in, buffer);
    return buffer;
  }
}

// What a model of element type T holds: its values rounded to T.
template <typename T>
void round_to_element(MatrixRef m) {
  if constexpr (!kFloat<T>) round_to_bf16(m);
}

// With overlap, an MPI_Test between GEMM blocks keeps the all-reduce in flight moving. Each
// chunk's GEMMs run in this many blocks of rows (blocks of columns measured no faster)...
constexpr int kBlocksPerChunk = 2;
// ...and dW_in = Xᵀ·dpre, behind which dX's all-reduce travels, in this many blocks of columns,
// however many chunks the forward has: each block packs all of Xᵀ again.
constexpr int kBackwardBlocks = 4;

int chunks_of(Scheme scheme, const Config& cfg) {
  return scheme == Scheme::megatron_overlap ? std::max(1, cfg.overlap_chunks) : 1;
}

int column_blocks(int chunks) { return chunks > 1 ? kBackwardBlocks : 1; }

// The row counts of the forward's GEMM blocks, each once: blocks differ by at most a row, so
// one to three heights, and one plan for each.
std::vector<long> block_heights(long tokens, int chunks, int blocks) {
  std::vector<long> heights;
  for (int c = 0; c < chunks; ++c)
    for (int j = 0; j < blocks; ++j) {
      const long rows = block_of(block_of(tokens, chunks, c).count, blocks, j).count;
      if (std::find(heights.begin(), heights.end(), rows) == heights.end()) heights.push_back(rows);
    }
  return heights;
}

}  // namespace

template <typename T>
SchemeBytes ColumnRowMlp<T>::bytes(Scheme scheme, const Config& cfg, Block columns, Block tokens) {
  const double f = sizeof(float), e = sizeof(T), H = cfg.hidden_size;
  const double width = double(columns.count), in = cfg.projections() * width;  // p·width
  const double all = double(cfg.tokens()), here = double(tokens.count);
  const bool sp = scheme == Scheme::megatron_sp, bf16 = !kFloat<T>;
  const double reduce = cfg.reduction() == DType::bf16 ? 2 : 0;  // bf16 partial sums
  const long t = cfg.tokens(), h = cfg.hidden_size, w = columns.count, p = cfg.projections();
  SchemeBytes b;
  b.weights = (H * in + width * H) * e;     // w_in_, w2_
  if (cfg.bias) b.buffers += (in + H) * f;  // b_in_, b2_
  b.buffers += all * (in + width + H) * f;  // pre_, act_, y_sum_
  if (bf16) b.buffers += (here + all * (sp ? 1 : 0)) * H * e + all * width * e;  // x_, act_in_
  if (sp && !bf16) b.buffers += all * H * f;                                     // x_full_
  if (sp) b.buffers += here * H * f;                                             // y_here_
  b.buffers += (all + (sp ? here : 0)) * H * reduce;  // partial_b_, here_b_
  const int chunks = chunks_of(scheme, cfg), blocks = chunks > 1 ? kBlocksPerChunk : 1;
  const std::vector<long> heights = block_heights(t, chunks, blocks);
  b.buffers += double(heights.size() * sizeof(ForwardPlans));  // forward_'s own storage
  for (const long rows : heights)                              // forward_
    b.buffers += PlannedGemm<T>::bytes_for(rows, p * w, h, kWeights) +
                 PlannedGemm<T>::bytes_for(rows, h, w, kWeights);
  if (!cfg.backward) return b;
  b.buffers += all * (width + in) * f;                                        // dact_, dpre_
  b.buffers += (H * in + width * H) * f;                                      // dw_in_, dw2_
  if (cfg.bias) b.buffers += (in + H) * f;                                    // db_in_, db2_
  b.buffers += all * H * f;                                                   // dx_sum_
  if (bf16) b.buffers += (here + all * (sp ? 1 : 0)) * H * e + all * in * e;  // dy_, dpre_in_
  if (sp && !bf16) b.buffers += all * H * f;                                  // dy_full_
  if (sp) b.buffers += here * H * f;                                          // dx_here_
  b.buffers += PlannedGemm<T>::bytes_for(w, h, t, kVaries) +                  // grad_w2_
               PlannedGemm<T>::bytes_for(t, w, h, kVaries) +                  // grad_act_
               PlannedGemm<T>::bytes_for(t, h, p * w, kVaries);               // grad_x_
  b.buffers += double(std::size_t(column_blocks(chunks)) * sizeof(PlannedGemm<T>));  // grad_w_in_
  for (int j = 0; j < column_blocks(chunks); ++j)                                    // grad_w_in_
    b.buffers +=
        PlannedGemm<T>::bytes_for(h, block_of(p * w, column_blocks(chunks), j).count, t, kVaries);
  return b;
}

template <typename T>
ColumnRowMlp<T>::ColumnRowMlp(Scheme scheme, const Config& cfg, TpComm& tp)
    : scheme_(scheme),
      tp_(tp),
      activation_(cfg.activation),
      sp_(scheme == Scheme::megatron_sp),
      bias_(cfg.bias),
      reduce_bf16_(cfg.reduction() == DType::bf16),
      columns_(block_of(cfg.intermediate_size(), tp.size(), tp.rank())),
      tokens_(tokens_held(scheme, cfg, tp)),
      chunks_(chunks_of(scheme, cfg)),
      blocks_(chunks_ > 1 ? kBlocksPerChunk : 1),
      hidden_size_(cfg.hidden_size) {
  const long H = cfg.hidden_size, tokens = cfg.tokens(), width = columns_.count;
  const long in = cfg.projections() * width, here = tokens_.count;
  const Block all_hidden = {0, H}, one_row = {0, 1};
  const bool bf16 = !kFloat<T>;
  w_in_.resize(H, in);  // [H, p·F/T]: W1's columns (and W3's), side by side
  fill_first_layer(w_in_, cfg, LayerPart::weight, all_hidden, columns_);
  w2_.resize(width, H);  // [F/T, H]
  fill_block(w2_, master_w2(cfg), cfg.seed, columns_.first, 0);
  if (bias_) {
    b_in_.resize(1, in);  // [1, p·F/T]
    fill_first_layer(b_in_, cfg, LayerPart::bias, one_row, columns_);
    b2_ = master_block(master_b2(cfg), cfg.seed, one_row, all_hidden);  // [1, H]
  }
  pre_.resize(tokens, in);                           // [tokens, p·F/T], the activation's input
  act_.resize(tokens, width);                        // [tokens, F/T], its output
  y_sum_.resize(tokens, H);                          // [tokens, H], partial sums, then Y
  if (bf16) x_here_.resize(here, H);                 // [tokens here, H], x as T
  if (sp_) x_full_.resize(tokens, H);                // [tokens, H], gathered
  if (bf16) act_in_.resize(tokens, width);           // [tokens, F/T], the activation as T
  if (sp_) y_here_.resize(here, H);                  // [tokens/T, H]
  if (reduce_bf16_) partial_b_.resize(tokens, H);    // [tokens, H]
  if (reduce_bf16_ && sp_) here_b_.resize(here, H);  // [tokens/T, H]
  // What the first GEMM reads, x: as the caller passes it (fp32), as T, or gathered, always
  // [tokens, H] row-major; and so is dY. A plan needs that layout, not the data.
  const Eigen::Map<const MatrixT> x_in(nullptr, tokens, H), dy_in(nullptr, tokens, H);
  const std::vector<long> heights = block_heights(tokens, chunks_, blocks_);
  forward_.reserve(heights.size());  // one allocation, as bytes() counts it
  for (const long rows : heights) {
    const Block r = {0, rows};  // any block of this height: they share strides
    forward_.push_back(
        {rows,
         PlannedGemm<T>(x_in.middleRows(r.first, r.count), w_in_, pre_.middleRows(r.first, r.count),
                        Op::none, Op::none, kWeights),
         PlannedGemm<T>(act_input().middleRows(r.first, r.count), w2_,
                        y_sum_.middleRows(r.first, r.count), Op::none, Op::none, kWeights)});
  }
  if (!cfg.backward) return;
  if (bf16) dy_here_.resize(here, H);     // [tokens here, H], dy as T
  if (sp_) dy_full_.resize(tokens, H);    // [tokens, H], gathered
  dact_.resize(tokens, width);            // [tokens, F/T]
  dpre_.resize(tokens, in);               // [tokens, p·F/T]
  if (bf16) dpre_in_.resize(tokens, in);  // [tokens, p·F/T], as T
  dw_in_.resize(H, in);                   // [H, p·F/T]
  dw2_.resize(width, H);                  // [F/T, H]
  if (bias_) db_in_.resize(1, in);        // [1, p·F/T]
  if (bias_) db2_.resize(1, H);           // [1, H]
  dx_sum_.resize(tokens, H);              // [tokens, H], partial sums, then dX
  if (sp_) dx_here_.resize(here, H);      // [tokens/T, H]
  grad_w2_.emplace(act_input(), dy_in, dw2_, Op::transpose, Op::none, kVaries);
  grad_act_.emplace(dy_in, w2_, dact_, Op::none, Op::transpose, kVaries);
  const int dw_blocks = column_blocks(chunks_);
  grad_w_in_.reserve(std::size_t(dw_blocks));
  for (int j = 0; j < dw_blocks; ++j) {
    const Block cols = block_of(in, dw_blocks, j);
    grad_w_in_.emplace_back(x_in, dpre_input().middleCols(cols.first, cols.count),
                            dw_in_.middleCols(cols.first, cols.count), Op::transpose, Op::none,
                            kVaries);
  }
  grad_x_.emplace(dpre_input(), w_in_, dx_sum_, Op::none, Op::transpose, kVaries);
}

template <typename T>
const typename ColumnRowMlp<T>::MatrixT& ColumnRowMlp<T>::act_input() const {
  if constexpr (kFloat<T>)
    return act_;
  else
    return act_in_;
}

template <typename T>
const typename ColumnRowMlp<T>::MatrixT& ColumnRowMlp<T>::dpre_input() const {
  if constexpr (kFloat<T>)
    return dpre_;
  else
    return dpre_in_;
}

template <typename T>
long ColumnRowMlp<T>::weight_bytes() const {
  return bytes_of(w_in_) + bytes_of(w2_);
}

template <typename T>
Parameters ColumnRowMlp<T>::parameters() {
  if constexpr (kFloat<T>)
    return {columns_, &w_in_, &w2_, bias_ ? &b_in_ : nullptr, bias_ ? &b2_ : nullptr};
  return {};
}

template <typename T>
ParametersB ColumnRowMlp<T>::parameters_bf16() {
  if constexpr (!kFloat<T>)
    return {columns_, &w_in_, &w2_, bias_ ? &b_in_ : nullptr, bias_ ? &b2_ : nullptr};
  return {};
}

template <typename T>
void ColumnRowMlp<T>::parameters_changed() {
  for (ForwardPlans& plans : forward_) {
    plans.first.prepare(w_in_);
    plans.second.prepare(w2_);
  }
}

template <typename T>
typename ColumnRowMlp<T>::ForwardPlans& ColumnRowMlp<T>::plans_for(long rows) {
  for (ForwardPlans& plans : forward_)
    if (plans.rows == rows) return plans;
  throw std::logic_error("no GEMM plan for a block of " + std::to_string(rows) + " rows");
}

template <typename T>
Block ColumnRowMlp<T>::chunk_block(int c, int j) const {
  const Block chunk = block_of(pre_.rows(), chunks_, c);
  const Block block = block_of(chunk.count, blocks_, j);
  return {chunk.first + block.first, block.count};
}

template <typename T>
Gradients ColumnRowMlp<T>::gradients() const {
  return {columns_, &dw_in_, &dw2_, bias_ ? &db_in_ : nullptr, bias_ ? &db2_ : nullptr};
}

template <typename T>
const Matrix& ColumnRowMlp<T>::forward(const Matrix& x) {
  x_ = &enter_region(x, x_here_, x_full_);  // f: identity; f̄: all-gather the tokens
  for (int c = 0; c < chunks_; ++c) {
    const Block chunk = block_of(pre_.rows(), chunks_, c);
    for (int j = 0; j < blocks_; ++j) {  // column-parallel: whole columns, no communication
      const Block r = chunk_block(c, j);
      plans_for(r.count).first.run(x_->middleRows(r.first, r.count), w_in_,
                                   pre_.middleRows(r.first, r.count));
      if (chunks_ > 1) tp_.progress();
    }
    auto pre = pre_.middleRows(chunk.first, chunk.count);
    if (bias_) pre.rowwise() += b_in_.row(0);
    auto act = act_.middleRows(chunk.first, chunk.count);
    activate(activation_, pre, act);  // so the activation is local
    if constexpr (!kFloat<T>) to_bf16(act, act_in_.middleRows(chunk.first, chunk.count));
    for (int j = 0; j < blocks_; ++j) {  // row-parallel: a partial sum of Y
      const Block r = chunk_block(c, j);
      plans_for(r.count).second.run(act_input().middleRows(r.first, r.count), w2_,
                                    y_sum_.middleRows(r.first, r.count));
      if (chunks_ > 1) tp_.progress();
    }
    if (chunks_ > 1) start_leaving(y_sum_, chunk);  // g of this chunk, while the next computes
  }
  // g: all-reduce; ḡ: reduce-scatter
  Matrix& y = chunks_ > 1 ? finish_leaving(y_sum_) : leave_region(y_sum_, y_here_);
  if (bias_) y.rowwise() += b2_.row(0);  // once, after the sum, not T times
  round_to_element<T>(y);
  return y;
}

template <typename T>
const Matrix& ColumnRowMlp<T>::backward(const Matrix& dy) {
  const MatrixT& dy_all = enter_region(dy, dy_here_, dy_full_);  // g: identity; ḡ: all-gather
  if (bias_) db2_ = dy_all.template cast<float>().colwise().sum();
  grad_w2_->run(act_input(), dy_all, dw2_);            // dW2 = actᵀ·dY     [F/T, H]
  grad_act_->run(dy_all, w2_, dact_);                  // dact = dY·W2ᵀ     [tokens, F/T]
  activate_backward(activation_, pre_, dact_, dpre_);  // dpre = dact ⊙ act'(pre)
  if (bias_) db_in_ = dpre_.colwise().sum();
  const MatrixT& dpre_in = as_input<T>(dpre_, dpre_in_);
  grad_x_->run(dpre_in, w_in_, dx_sum_);  // dX partial = dpre·W_inᵀ
  // f: all-reduce (started now when overlapped, to travel during dW_in); f̄: reduce-scatter
  if (chunks_ > 1) start_leaving(dx_sum_, {0, dx_sum_.rows()});
  const int dw_blocks = int(grad_w_in_.size());
  for (int j = 0; j < dw_blocks; ++j) {  // dW_in = Xᵀ·dpre   [H, p·F/T]
    const Block cols = block_of(dw_in_.cols(), dw_blocks, j);
    grad_w_in_[std::size_t(j)].run(*x_, dpre_in.middleCols(cols.first, cols.count),
                                   dw_in_.middleCols(cols.first, cols.count));
    if (chunks_ > 1) tp_.progress();
  }
  Matrix& dx = chunks_ > 1 ? finish_leaving(dx_sum_) : leave_region(dx_sum_, dx_here_);
  round_to_element<T>(dx);
  return dx;
}

template <typename T>
const typename ColumnRowMlp<T>::MatrixT& ColumnRowMlp<T>::enter_region(const Matrix& here,
                                                                       MatrixT& here_t,
                                                                       MatrixT& full) {
  const MatrixT& local = as_input<T>(here, here_t);
  if (!sp_) return local;
  tp_.all_gather_rows(local.data(), full.data(), full.rows(), hidden_size_);
  return full;
}

template <typename T>
Matrix& ColumnRowMlp<T>::leave_region(Matrix& partial, Matrix& here) {
  Matrix& sum = sp_ ? here : partial;
  if (reduce_bf16_) {  // the partial sums travel, and are added, as bf16
    to_bf16(partial, partial_b_);
    MatrixB& sum_b = sp_ ? here_b_ : partial_b_;
    if (sp_)
      tp_.reduce_scatter_rows(partial_b_.data(), here_b_.data(), partial.rows(), hidden_size_);
    else
      tp_.all_reduce_sum(partial_b_.data(), partial_b_.size());
    to_float(sum_b, sum);
    return sum;
  }
  if (sp_)
    tp_.reduce_scatter_rows(partial.data(), here.data(), partial.rows(), hidden_size_);
  else
    tp_.all_reduce_sum(partial.data(), partial.size());  // a group of one returns at once
  return sum;
}

template <typename T>
void ColumnRowMlp<T>::start_leaving(Matrix& partial, Block rows) {
  auto part = partial.middleRows(rows.first, rows.count);
  if (!reduce_bf16_) {
    tp_.start_all_reduce_sum(part.data(), part.size());
    return;
  }
  auto part_b = partial_b_.middleRows(rows.first, rows.count);
  to_bf16(part, part_b);
  tp_.start_all_reduce_sum(part_b.data(), part_b.size());
}

template <typename T>
Matrix& ColumnRowMlp<T>::finish_leaving(Matrix& partial) {
  tp_.finish_all();
  if (reduce_bf16_) to_float(partial_b_, partial);
  return partial;
}

template class ColumnRowMlp<float>;
template class ColumnRowMlp<bfloat16>;

}  // namespace tp_mlp
