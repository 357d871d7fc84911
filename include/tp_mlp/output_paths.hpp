// output_paths: the run's outputs, --json and --save-tensors, checked together before it
// starts: each can be written, and neither would overwrite the other.
#pragma once

#include <string>
#include <vector>

#include "tp_mlp/config.hpp"

namespace tp_mlp {

// Empty when --json and --save-tensors (a set of `tensor_names`) can be written, and neither
// would overwrite the other; otherwise what is wrong. Creates and changes nothing: the rank
// that will write them runs it before the run starts.
std::string check_output_paths(const Config& cfg, const std::vector<std::string>& tensor_names);

}  // namespace tp_mlp
