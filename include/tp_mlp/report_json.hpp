// report_json: the whole report as one JSON document, printing the rows of metrics.hpp. The
// keys are a contract that scripts depend on: add, never rename or drop without bumping
// kSchemaVersion (and saying so in the README).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "tp_mlp/config.hpp"
#include "tp_mlp/launch.hpp"
#include "tp_mlp/metrics.hpp"
#include "tp_mlp/run_plan.hpp"

namespace tp_mlp {

inline constexpr int kSchemaVersion = 1;

nlohmann::json report_json(const Config& cfg, const RunPlan& plan, const Launch& launch,
                           const Metrics& m);

// Writes the document to `path`, never leaving a half-written file.
void write_json(const std::string& path, const nlohmann::json& doc);

}  // namespace tp_mlp
