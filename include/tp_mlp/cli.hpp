// cli: reading argv into a Config with CLI11: every flag's range, --help, and one clear message
// for what it refuses. Knows nothing of MPI, so every rank reads the same verdict.
#pragma once

#include <optional>
#include <string>

#include "tp_mlp/config.hpp"

namespace tp_mlp {

// The outcome of reading argv: a configuration to run, or text to print and an exit code
// (help is text with exit code 0).
struct ParsedArgs {
  std::optional<Config> config;
  int exit_code = 0;
  std::string text;
  bool text_is_error = false;
};
ParsedArgs parse_args(int argc, const char* const* argv);

}  // namespace tp_mlp
