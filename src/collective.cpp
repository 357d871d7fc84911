// collective: names, the ring rule and tallies (see collective.hpp).
#include "tp_mlp/collective.hpp"

namespace tp_mlp {

const char* collective_name(Collective kind) {
  switch (kind) {
    case Collective::all_reduce: return "all-reduce";
    case Collective::all_gather: return "all-gather";
    case Collective::reduce_scatter: return "reduce-scatter";
  }
  return "?";
}

const char* collective_key(Collective kind) {
  switch (kind) {
    case Collective::all_reduce: return "all_reduce";
    case Collective::all_gather: return "all_gather";
    case Collective::reduce_scatter: return "reduce_scatter";
  }
  return "?";
}

double ring_bytes_per_rank(Collective kind, double bytes, int tp_size) {
  const double moved = bytes * (tp_size - 1) / tp_size;  // nothing moves when T = 1
  return kind == Collective::all_reduce ? 2 * moved : moved;
}

void CommStats::add(const CollectiveCall& call, double seconds) {
  CollectiveTally& t = (*this)[call.kind];
  t.calls += 1;
  t.bytes += call.bytes();
  t.seconds += seconds;
}

long CommStats::calls() const {
  long n = 0;
  for (const CollectiveTally& t : tallies_) n += t.calls;
  return n;
}

long CommStats::bytes() const {
  long n = 0;
  for (const CollectiveTally& t : tallies_) n += t.bytes;
  return n;
}

double CommStats::seconds() const {
  double s = 0;
  for (const CollectiveTally& t : tallies_) s += t.seconds;
  return s;
}

double CommStats::ring_bytes_per_rank(int tp_size) const {
  double total = 0;
  for (Collective kind : kCollectives)
    total += tp_mlp::ring_bytes_per_rank(kind, double((*this)[kind].bytes), tp_size);
  return total;
}

bool CommStats::same_traffic(const CommStats& other) const {
  for (Collective kind : kCollectives)
    if ((*this)[kind].calls != other[kind].calls || (*this)[kind].bytes != other[kind].bytes)
      return false;
  return true;
}

CommStats tally(const std::vector<CollectiveCall>& calls) {
  CommStats stats;
  for (const CollectiveCall& call : calls) stats.add(call);
  return stats;
}

}  // namespace tp_mlp
