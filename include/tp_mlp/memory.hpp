// memory: what a configuration will allocate, checked against the machine before anything is
// allocated. Each part of the program states its own bytes beside the code that allocates
// them (the schemes, the comparison's inputs, the reference, the floor's buffers); this only
// adds them up. Sums are in double so that no product of flags can overflow.
#pragma once

#include <string>

#include "tp_mlp/config.hpp"

namespace tp_mlp {

struct MemoryEstimate {
  double weights = 0;      // every rank: the W1 and W2 shards of the parallel schemes
  double activations = 0;  // every rank: inputs, the schemes' buffers, the floor's buffers
  double reference = 0;    // every rank: verification's reference blocks
  double serial = 0;       // world rank 0 alone: the serial baseline, weights and buffers
  double per_rank() const { return weights + activations + reference; }
  double on_node(int ranks) const { return per_rank() * ranks + serial; }
};
MemoryEstimate estimate_memory(const Config& cfg, int world_size);

// Empty when the ranks on this node fit in its available memory; otherwise one sentence.
std::string check_memory(const Config& cfg, const LaunchFacts& launch);

}  // namespace tp_mlp
