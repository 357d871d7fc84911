// output_paths: --json and --save-tensors, each checked by output.hpp's rules, then against
// each other by where their links lead.
#include "tp_mlp/output_paths.hpp"

#include <filesystem>

#include "tp_mlp/output.hpp"

namespace tp_mlp {

std::string check_output_paths(const Config& cfg, const std::vector<std::string>& tensor_names) {
  namespace fs = std::filesystem;
  if (!cfg.tensors_dir.empty()) {
    const std::string why = FileSet::check(cfg.tensors_dir, tensor_names);
    if (!why.empty())
      return "--save-tensors " + cfg.tensors_dir + ": cannot write there (" + why + ")";
  }
  if (cfg.json_path.empty()) return "";
  if (!cfg.tensors_dir.empty() && cfg.json_path != "-") {
    // The report must not be one of the tensors, or one would overwrite the other.
    auto resolved = [](const fs::path& p) {
      std::error_code ec;  // on error, the path as written: at worst the check misses a match
      const fs::path absolute = fs::absolute(p, ec);
      return fs::weakly_canonical(absolute, ec).lexically_normal();
    };
    for (const std::string& name : tensor_names)
      if (resolved(cfg.json_path) == resolved(fs::path(cfg.tensors_dir) / name))
        return "--json " + cfg.json_path + " is " + name + " of --save-tensors " + cfg.tensors_dir +
               ": write the report elsewhere";
  }
  const std::string why = check_output_file(cfg.json_path);
  if (!why.empty()) return "--json " + cfg.json_path + ": cannot write there (" + why + ")";
  return "";
}

}  // namespace tp_mlp
