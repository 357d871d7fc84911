// Head sharding: every query head on one rank, each rank's KV heads exactly those its query
// heads use, and the replicated KV heads exactly those that several ranks need.
#include <gtest/gtest.h>

#include "tp_mlp/head_sharding.hpp"

using namespace tp_mlp;

TEST(HeadSharding, Qwen25SevenBOverEightRanks) {
  // 28 query heads, 4 KV heads (groups of 7), T = 8: 4, 4, 4, 4, 3, 3, 3, 3 query heads.
  const HeadSharding s(28, 4, 8);
  const long query_first[] = {0, 4, 8, 12, 16, 19, 22, 25};
  const long kv_first[] = {0, 0, 1, 1, 2, 2, 3, 3}, kv_count[] = {1, 2, 1, 2, 1, 2, 1, 1};
  for (int r = 0; r < 8; ++r) {
    const HeadShard h = s.of(r);
    EXPECT_EQ(h.query.first, query_first[r]) << r;
    EXPECT_EQ(h.kv.first, kv_first[r]) << r;
    EXPECT_EQ(h.kv.count, kv_count[r]) << r;
  }
  EXPECT_EQ(s.replicated_heads(), (std::vector<long>{0, 1, 2, 3}));
  EXPECT_EQ(s.holders(1).first, 1);
  EXPECT_EQ(s.holders(1).count, 3);  // ranks 1, 2, 3
  EXPECT_EQ(s.kv_heads_held(), 11);  // 4 KV heads + 7 extra replicas
  // Rank 1's query heads 4..7 use its local KV heads 0 (global 0) and 1 (global 1).
  EXPECT_EQ(s.of(1).layout(128, 28, 4).kv_of, (std::vector<int>{0, 0, 0, 1}));
}

TEST(HeadSharding, NoReplicaWhenGroupsFollowTheRanks) {
  const HeadSharding s(8, 4, 2);
  EXPECT_TRUE(s.replicated_heads().empty());
  EXPECT_EQ(s.replica_slot(1), -1);
  EXPECT_EQ(s.kv_heads_held(), 4);
}

TEST(HeadSharding, EveryRuleHoldsForEverySmallShape) {
  for (long N = 1; N <= 12; ++N)
    for (long K = 1; K <= N; ++K) {
      if (N % K != 0) continue;
      for (int T = 1; T <= 6; ++T) {
        const HeadSharding s(N, K, T);
        const std::string what =
            "N=" + std::to_string(N) + " K=" + std::to_string(K) + " T=" + std::to_string(T);
        std::vector<int> owner(std::size_t(N), -1);
        long previous_end = 0;
        for (int r = 0; r < T; ++r) {
          const HeadShard h = s.of(r);
          EXPECT_EQ(h.query.first, previous_end) << what;  // contiguous, in rank order
          previous_end = h.query.end();
          EXPECT_LE(h.query.count, (N + T - 1) / T) << what;
          EXPECT_GE(h.query.count, N / T) << what;
          for (long q = h.query.first; q < h.query.end(); ++q) owner[std::size_t(q)] = r;
          // Its KV heads: exactly those its query heads use, and the layout pairs them right.
          const HeadLayout layout = h.layout(2, N, K);
          for (long kv = h.kv.first; kv < h.kv.end(); ++kv) {
            bool used = false;
            for (long q = h.query.first; q < h.query.end(); ++q) used = used || q * K / N == kv;
            EXPECT_TRUE(used) << what << " rank " << r << " holds unused KV head " << kv;
          }
          for (long i = 0; i < h.query.count; ++i)
            EXPECT_EQ(h.kv.first + layout.kv_of[std::size_t(i)], (h.query.first + i) * K / N)
                << what;
        }
        EXPECT_EQ(previous_end, N) << what;
        // A KV head is held by exactly the ranks owning one of its query heads.
        long replicated = 0;
        for (long kv = 0; kv < K; ++kv) {
          const Block group = s.group(kv), holders = s.holders(kv);
          EXPECT_EQ(holders.first, owner[std::size_t(group.first)]) << what;
          EXPECT_EQ(holders.end() - 1, owner[std::size_t(group.end() - 1)]) << what;
          EXPECT_EQ(s.replicated(kv), holders.count > 1) << what;
          if (s.replicated(kv)) {
            EXPECT_EQ(s.replica_slot(kv), replicated++) << what;
          }
        }
        EXPECT_EQ(long(s.replicated_heads().size()), replicated) << what;
        EXPECT_LE(replicated, std::min<long>(K, T - 1)) << what;
      }
    }
}
