// agreement: the verdict over every rank (see agreement.hpp).
#include "tp_mlp/agreement.hpp"

namespace tp_mlp {

Verification conclude(const std::string& tensor, const Agreement& local, long terms,
                      const World& world) {
  Verification v;
  v.tensor = tensor;
  v.max_abs_diff = world.max(local.diff);
  const double scale = world.max(local.scale);
  v.max_rel_diff = v.max_abs_diff / scale;
  v.tolerance = world.max(local.bound) / scale;
  v.max_diff_over_bound = world.max(local.worst);
  v.accumulated_terms = terms;
  v.passed = v.max_diff_over_bound <= 1;  // false for NaN too
  return v;
}

}  // namespace tp_mlp
