// head_sharding: which attention heads each rank of a tensor-parallel group holds.
//
// N query heads are dealt out in contiguous blocks that differ by at most one (partition.hpp):
// rank r owns query heads [q0, q1), and a rank may own none when N < T. Grouped-query attention
// (K < N KV heads) pairs query head q with KV head ⌊q·K/N⌋ (Hugging Face's repeat_kv: each KV
// head serves N/K consecutive query heads), so rank r needs KV heads ⌊q0·K/N⌋ … ⌊(q1−1)·K/N⌋,
// contiguous too. A KV head whose query heads straddle a rank boundary, and every KV head when
// K < T, is needed by several ranks: each holds a replica of its Wk and Wv columns (and biases)
// and computes its K and V redundantly, and each replica's gradient is only the part of the
// query heads on that rank. The true gradient is the sum over exactly the ranks that hold it;
// forgetting that sum is the classic silent mistake (--plant-fault kv-grad-not-summed).
//
// Only the first and the last KV head of a rank can be shared (a KV head strictly between
// them has all its query heads on this rank), and every shared head straddles at least one of
// the T − 1 boundaries between ranks, each boundary lying inside at most one KV head's query
// heads: at most min(K, T − 1) KV heads are replicated.
//
// Pure arithmetic on (N, K, T): every rank computes every rank's share, validation included.
#pragma once

#include <vector>

#include "tp_mlp/causal_attention.hpp"
#include "tp_mlp/partition.hpp"

namespace tp_mlp {

// One rank's heads.
struct HeadShard {
  Block query;  // its query heads
  Block kv;     // the KV heads those use (empty when it owns no query head)
  // The KV head, numbered from 0 on this rank, that its query head h (also from 0) uses, of N
  // query heads and K KV heads in all.
  long local_kv_of(long h, long query_heads, long kv_heads) const {
    return (query.first + h) * kv_heads / query_heads - kv.first;
  }
  // The same heads numbered from 0 on this rank, as CausalAttention runs them.
  HeadLayout layout(long head_dim, long query_heads, long kv_heads) const;
};

// Where the fused projection [Q | K | V] of a rank holding query heads `query` (and the KV
// heads they use) takes each projection's columns: on the rank, and in the master
// [Wq | Wk | Wv] of N query and K KV heads of d features. Q's, K's, V's, in that order.
struct FusedColumns {
  Block here[3];
  Block master[3];
};
FusedColumns fused_qkv_columns(Block query, long query_heads, long kv_heads, long head_dim);

class HeadSharding {
 public:
  HeadSharding(long query_heads, long kv_heads, int ranks);

  long query_heads() const { return query_heads_; }
  long kv_heads() const { return kv_heads_; }
  int ranks() const { return ranks_; }
  // The KV head query head q uses.
  long kv_of(long q) const { return q * kv_heads_ / query_heads_; }
  // The query heads KV head kv serves: [kv·N/K, (kv + 1)·N/K).
  Block group(long kv) const;
  HeadShard of(int rank) const;
  // The ranks that hold KV head kv, in order: contiguous.
  Block holders(long kv) const;
  bool replicated(long kv) const { return holders(kv).count > 1; }
  // The replicated KV heads, in order: what the backward sums over ranks (R of them).
  std::vector<long> replicated_heads() const;
  long replicated_count() const;
  // Where KV head kv sits among the replicated ones, or −1. (Computed, not kept: a scheme holds
  // a HeadSharding, and builds nothing outside its workspace.)
  long replica_slot(long kv) const;
  // Every rank's KV heads, counted once per rank: K + the extra replicas.
  long kv_heads_held() const;

 private:
  long query_heads_, kv_heads_;
  int ranks_;
};

}  // namespace tp_mlp
