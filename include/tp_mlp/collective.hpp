// collective: the vocabulary of communication, free of MPI. The kinds of collective the model
// needs, one call of a kind, and a tally of calls per kind: the communication layer counts in
// it, the formulas predict in it, and the report loops over it, so that a new kind of
// collective is one more entry here rather than another branch in every layer.
#pragma once

#include <array>
#include <cstddef>
#include <vector>

namespace tp_mlp {

enum class Collective { all_reduce, all_gather, reduce_scatter };

// Non-blocking collectives one group may have in flight at once: the most token chunks
// megatron-overlap may be split into (--overlap-chunks).
inline constexpr int kMaxCollectivesInFlight = 64;
inline constexpr std::array<Collective, 3> kCollectives = {
    Collective::all_reduce, Collective::all_gather, Collective::reduce_scatter};

const char* collective_name(Collective kind);  // "all-reduce", for people
const char* collective_key(Collective kind);   // "all_reduce", for JSON

// One collective, sized by the whole tensor it reduces or assembles (not one rank's share).
// An all-gather or reduce-scatter deals the tensor out by rows of `row_length` elements, in
// blocks that differ by at most one row (partition.hpp).
struct CollectiveCall {
  Collective kind = Collective::all_reduce;
  long elements = 0;
  long row_length = 1;
  long element_bytes = sizeof(float);
  long bytes() const { return elements * element_bytes; }
  long rows() const { return elements / row_length; }
};

// Bytes each rank sends with ring algorithms: an all-gather or a reduce-scatter of B bytes
// moves B·(T−1)/T per rank, and an all-reduce is one of each.
double ring_bytes_per_rank(Collective kind, double bytes, int tp_size);

struct CollectiveTally {
  long calls = 0;
  long bytes = 0;      // of the whole tensors, as in CollectiveCall
  double seconds = 0;  // wall time spent inside the collectives on this rank
};

// Calls, bytes and time, per kind of collective.
class CommStats {
 public:
  CollectiveTally& operator[](Collective kind) { return tallies_[index(kind)]; }
  const CollectiveTally& operator[](Collective kind) const { return tallies_[index(kind)]; }
  void add(const CollectiveCall& call, double seconds = 0);

  long calls() const;
  long bytes() const;
  double seconds() const;
  double ring_bytes_per_rank(int tp_size) const;
  // The same calls and bytes of every kind; time is not traffic.
  bool same_traffic(const CommStats& other) const;

 private:
  static std::size_t index(Collective kind) { return static_cast<std::size_t>(kind); }
  std::array<CollectiveTally, kCollectives.size()> tallies_{};
};

// What a list of calls adds up to, for comparing a formula with what was counted.
CommStats tally(const std::vector<CollectiveCall>& calls);

}  // namespace tp_mlp
