// output_paths: --json and --save-tensors, each checked by output.hpp's rules, then against
// each other by where their links lead.
#include "tp_mlp/output_paths.hpp"

#include <algorithm>

#include "tp_mlp/output.hpp"

namespace tp_mlp {

std::string check_output_paths(const Config& cfg, const std::vector<std::string>& tensor_names) {
  const std::string &dir = cfg.tensors_dir, &report = cfg.json_path;
  if (!dir.empty()) {
    const std::string why = FileSet::check(dir, tensor_names);
    if (!why.empty()) return "--save-tensors " + dir + ": cannot write there (" + why + ")";
  }
  if (report.empty()) return "";
  if (!dir.empty() && report != "-") {
    // Written after the tensors, the report would replace one of them, or find a directory
    // where it was to go.
    const std::string file = resolved_path(report), directory = resolved_path(dir);
    const auto tensor = std::find_if(tensor_names.begin(), tensor_names.end(), [&](auto& name) {
      return resolved_path(dir + "/" + name) == file;
    });
    if (tensor != tensor_names.end())
      return "--json " + report + " is " + *tensor + " of --save-tensors " + dir +
             ": write the report elsewhere";
    if (file == directory || directory.rfind(file + "/", 0) == 0)
      return "--json " + report + " is a directory of --save-tensors " + dir +
             ": write the report elsewhere";
  }
  const std::string why = check_output_file(report);
  if (!why.empty()) return "--json " + report + ": cannot write there (" + why + ")";
  return "";
}

}  // namespace tp_mlp
