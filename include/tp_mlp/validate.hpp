// validate: the checks that need the whole configuration (divisibility, rank count, sizes MPI
// can send, flags that need each other), pure, so that every rank reaches the same verdict
// before any collective.
#pragma once

#include <string>

#include "tp_mlp/config.hpp"

namespace tp_mlp {

// Empty when the flags fit together and fit a job of `world_size` ranks; otherwise one sentence
// that names the flag, the value and what would be allowed. (Memory is checked once the run is
// planned: memory.hpp.)
std::string validate(const Config& cfg, int world_size);

}  // namespace tp_mlp
