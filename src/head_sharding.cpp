// head_sharding: query heads in contiguous blocks, and the KV heads they need (see
// head_sharding.hpp).
#include "tp_mlp/head_sharding.hpp"

#include <algorithm>

namespace tp_mlp {

HeadLayout HeadShard::layout(long head_dim, long query_heads, long kv_heads) const {
  HeadLayout heads{head_dim, kv.count, {}};
  heads.kv_of.reserve(std::size_t(query.count));
  for (long h = 0; h < query.count; ++h)
    heads.kv_of.push_back(int(local_kv_of(h, query_heads, kv_heads)));
  return heads;
}

FusedColumns fused_qkv_columns(Block query, long query_heads, long kv_heads, long head_dim) {
  if (query.count == 0) return {};
  const long N = query_heads, K = kv_heads, d = head_dim;
  const long first_kv = query.first * K / N, last_kv = (query.end() - 1) * K / N;
  const long nq = query.count * d, nkv = (last_kv - first_kv + 1) * d;
  return {{{0, nq}, {nq, nkv}, {nq + nkv, nkv}},
          {{query.first * d, nq}, {(N + first_kv) * d, nkv}, {(N + K + first_kv) * d, nkv}}};
}

HeadSharding::HeadSharding(long query_heads, long kv_heads, int ranks)
    : query_heads_(query_heads), kv_heads_(kv_heads), ranks_(ranks) {}

std::vector<long> HeadSharding::replicated_heads() const {
  std::vector<long> heads;
  for (long kv = 0; kv < kv_heads_; ++kv)
    if (replicated(kv)) heads.push_back(kv);
  return heads;
}

long HeadSharding::replicated_count() const { return replica_slot(kv_heads_); }

Block HeadSharding::group(long kv) const {
  const long per_group = query_heads_ / kv_heads_;  // K divides N (validate.cpp)
  return {kv * per_group, per_group};
}

HeadShard HeadSharding::of(int rank) const {
  const Block query = block_of(query_heads_, ranks_, rank);
  if (query.count == 0) return {query, {0, 0}};
  const long first = kv_of(query.first), last = kv_of(query.end() - 1);
  return {query, {first, last - first + 1}};
}

Block HeadSharding::holders(long kv) const {
  int first = -1, last = -1;
  for (int r = 0; r < ranks_; ++r) {
    const Block held = of(r).kv;
    if (kv < held.first || kv >= held.end()) continue;
    if (first < 0) first = r;
    last = r;
  }
  return {first, first < 0 ? 0 : last - first + 1};
}

long HeadSharding::replica_slot(long kv) const {
  if (kv < kv_heads_ && !replicated(kv)) return -1;
  long before = 0;  // the replicated heads before kv
  for (long k = 0; k < kv; ++k) before += replicated(k) ? 1 : 0;
  return before;
}

long HeadSharding::kv_heads_held() const {
  long held = 0;
  for (int r = 0; r < ranks_; ++r) held += of(r).kv.count;
  return held;
}

}  // namespace tp_mlp
