// region: entering and leaving the tensor-parallel region (see region.hpp).
#include "tp_mlp/region.hpp"

#include <algorithm>

namespace tp_mlp {

Outside outside_of(Scheme scheme) {
  return plain_of(scheme) == Scheme::megatron_sp ? Outside::sequence_parallel : Outside::replicated;
}

Block tokens_outside(Outside outside, long tokens, const TpComm& tp) {
  if (outside == Outside::replicated) return {0, tokens};
  return block_of(tokens, tp.size(), tp.rank());
}

template <typename T>
RegionEntry<T>::RegionEntry(Workspace& ws, TpComm& tp, Outside outside, long tokens,
                            long hidden_size, long padded_rows)
    : tp_(tp),
      outside_(outside),
      tokens_(tokens),
      here_t_(ws.matrix<T>(kIsFloat<T> || outside == Outside::replicated
                               ? 0
                               : tokens_outside(outside, tokens, tp).count,
                           hidden_size)),
      full_(ws.matrix<T>(outside == Outside::sequence_parallel || padded_rows > tokens
                             ? std::max(tokens, padded_rows)
                             : (kIsFloat<T> ? 0 : tokens),
                         hidden_size)) {
  if (!ws.planning()) full_.bottomRows(full_.rows() - std::min(full_.rows(), tokens)).setZero();
}

template <typename T>
ConstRef<T> RegionEntry<T>::enter(const ConstMatrixRef& here) {
  auto rows = full_.topRows(tokens_);
  if (outside_ == Outside::replicated) {  // f: the identity; a copy only to pad, or to round
    if constexpr (kIsFloat<T>) {
      if (full_.rows() == 0) return here;
      rows = here;
    } else {
      to_bf16(here, rows);
    }
    return full_;
  }
  const T* local = nullptr;  // f̄: all-gather the tokens
  if constexpr (kIsFloat<T>) {
    local = here.data();
  } else {
    to_bf16(here, here_t_);
    local = here_t_.data();
  }
  tp_.all_gather_rows(local, rows.data(), tokens_, full_.cols());
  return full_;
}

template class RegionEntry<float>;
template class RegionEntry<bfloat16>;

RegionExit::RegionExit(Workspace& ws, TpComm& tp, Outside outside, DType reduce_dtype, long tokens,
                       long hidden_size)
    : tp_(tp),
      outside_(outside),
      bf16_(reduce_dtype == DType::bf16),
      hidden_size_(hidden_size),
      here_(ws.matrix<float>(
          outside == Outside::sequence_parallel ? tokens_outside(outside, tokens, tp).count : 0,
          hidden_size)),
      partial_b_(ws.matrix<bfloat16>(bf16_ ? tokens : 0, hidden_size)),
      here_b_(ws.matrix<bfloat16>(bf16_ ? here_.rows() : 0, hidden_size)) {}

template <typename E>
void RegionExit::sum_over_group(E* partial, E* here, long rows) {
  if (outside_ == Outside::replicated)
    tp_.all_reduce_sum(partial, rows * hidden_size_);  // g, in place
  else
    tp_.reduce_scatter_rows(partial, here, rows, hidden_size_);  // ḡ
}

MatrixRef RegionExit::leave(MatrixRef partial) {
  MatrixRef sum = outside_ == Outside::replicated ? partial : MatrixRef(here_);
  if (!bf16_) {
    sum_over_group(partial.data(), here_.data(), partial.rows());
    return sum;
  }
  // The partial sums travel, and are added, as bf16.
  to_bf16(partial, partial_b_);
  sum_over_group(partial_b_.data(), here_b_.data(), partial.rows());
  to_float(outside_ == Outside::replicated ? partial_b_ : here_b_, sum);
  return sum;
}

void RegionExit::start_leaving(MatrixRef partial, Block rows) {
  auto part = partial.middleRows(rows.first, rows.count);
  if (!bf16_) {
    tp_.start_all_reduce_sum(part.data(), part.size());
    return;
  }
  auto part_b = partial_b_.middleRows(rows.first, rows.count);
  to_bf16(part, part_b);
  tp_.start_all_reduce_sum(part_b.data(), part_b.size());
}

MatrixRef RegionExit::finish_leaving(MatrixRef partial) {
  tp_.finish_all();
  if (bf16_) to_float(partial_b_, partial);
  return partial;
}

}  // namespace tp_mlp
