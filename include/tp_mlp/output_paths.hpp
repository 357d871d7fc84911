// output_paths: the run's outputs, --json and --save-tensors, checked together before it
// starts: each can be written, and no two of them are one file.
#pragma once

#include <string>
#include <vector>

#include "tp_mlp/config.hpp"

namespace tp_mlp {

// Empty when --json and --save-tensors (a set of `tensor_names`) can be written and none would
// write over another: no two tensors are one file (a link to another), and the report is none
// of them, nor the set's directory or one of its parents, which the set may have to make;
// otherwise what is wrong. Creates and changes nothing: the rank that will write them runs it
// before the run starts.
std::string check_output_paths(const Config& cfg, const std::vector<std::string>& tensor_names);

}  // namespace tp_mlp
