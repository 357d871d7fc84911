// memory: whether the run's plan fits this node, and what it used. The plan is the workspace's
// (workspace.hpp): every tensor the run will allocate, summed by building the run without
// allocating, so the check refuses by exactly what would be allocated. Sums are in double, so
// that no product of flags can overflow.
#pragma once

#include <string>

namespace tp_mlp {

// Empty when the ranks on this node fit in its available memory, the ranks' plans summing to
// `node_bytes` (`rank_bytes` on this rank, one of `ranks_on_node`); otherwise one sentence.
std::string memory_problem(double rank_bytes, double node_bytes, int ranks_on_node,
                           double available_bytes);

struct MemoryUse {
  double baseline_rss = 0;  // rank 0 before allocating the model
  double peak_rss = 0;      // rank 0's high-water mark
  double estimate = 0;      // rank 0's plan: what its workspace allocated
};

}  // namespace tp_mlp
