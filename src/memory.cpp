// memory: the estimate, summed from each part's own account (see memory.hpp).
#include "tp_mlp/memory.hpp"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "tp_mlp/analysis.hpp"
#include "tp_mlp/bench.hpp"
#include "tp_mlp/comparison.hpp"
#include "tp_mlp/mlp.hpp"
#include "tp_mlp/partition.hpp"
#include "tp_mlp/verify.hpp"

namespace tp_mlp {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

std::string gib(double bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f GiB", bytes / kGiB);
  return text;
}

}  // namespace

MemoryEstimate estimate_memory(const Config& cfg, int world_size) {
  MemoryEstimate m;
  m.activations = Comparison::bytes(cfg);
  double floor = 0;  // one scheme's floor is timed at a time
  for (Scheme s : cfg.schemes()) {
    const SchemeBytes b = scheme_bytes(s, cfg);
    if (s == Scheme::serial) {
      m.serial = b.total();
      continue;
    }
    m.weights += b.weights;
    m.activations += b.buffers;
    std::vector<CollectiveCall> calls = comm_formula(s, cfg, Direction::forward);
    for (const CollectiveCall& c : comm_formula(s, cfg, Direction::backward)) calls.push_back(c);
    floor = std::max(floor, CollectiveReplay::bytes(calls, cfg.tp_size));
  }
  m.activations += floor;
  const long rows = cfg.sequence_parallel ? block_of(cfg.tokens(), cfg.tp_size, 0).count
                                          : block_of(cfg.tokens(), world_size, 0).count;
  m.reference = reference_bytes(cfg, rows);
  return m;
}

std::string check_memory(const Config& cfg, const LaunchFacts& launch) {
  const MemoryEstimate estimate = estimate_memory(cfg, launch.world_size);
  const double per_rank = estimate.per_rank() + estimate.serial;  // rank 0, the largest
  const double needed = estimate.on_node(launch.ranks_on_this_node);
  if (needed <= launch.available_bytes) return "";
  std::ostringstream why;
  why << "this configuration needs about " << gib(needed) << " of memory on this node ("
      << gib(per_rank) << " on rank 0 with " << launch.ranks_on_this_node << " rank"
      << (launch.ranks_on_this_node == 1 ? "" : "s") << " here), but only "
      << gib(launch.available_bytes)
      << " is available: lower --hidden-size, --batch-size or --seq-len, raise --tp-size, "
         "or run fewer schemes with --scheme megatron";
  return why.str();
}

}  // namespace tp_mlp
