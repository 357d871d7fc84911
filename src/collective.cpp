// collective: names, the ring rule and tallies (see collective.hpp).
#include "tp_mlp/collective.hpp"

#include <iterator>

namespace tp_mlp {

namespace {

struct Names {
  const char* name;  // for people
  const char* key;   // for JSON
};
// In the order of the enum.
constexpr Names kNames[] = {{"all-reduce", "all_reduce"},
                            {"all-gather", "all_gather"},
                            {"reduce-scatter", "reduce_scatter"}};
static_assert(std::size(kNames) == kCollectives.size());

}  // namespace

const char* collective_name(Collective kind) { return kNames[static_cast<int>(kind)].name; }

const char* collective_key(Collective kind) { return kNames[static_cast<int>(kind)].key; }

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
