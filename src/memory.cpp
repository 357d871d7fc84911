// memory: the plan against the machine (see memory.hpp).
#include "tp_mlp/memory.hpp"

#include <cstdio>
#include <sstream>

namespace tp_mlp {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

std::string gib(double bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f GiB", bytes / kGiB);
  return text;
}

}  // namespace

std::string memory_problem(double rank_bytes, double node_bytes, int ranks_on_node,
                           double available_bytes) {
  if (node_bytes <= available_bytes) return "";
  std::ostringstream why;
  why << "this configuration needs about " << gib(node_bytes) << " of memory on this node ("
      << gib(rank_bytes) << " on this rank with " << ranks_on_node << " rank"
      << (ranks_on_node == 1 ? "" : "s") << " here), but only " << gib(available_bytes)
      << " is available: lower --hidden-size, --batch-size or --seq-len, raise --tp-size, "
         "or run fewer schemes with --scheme megatron";
  return why.str();
}

}  // namespace tp_mlp
