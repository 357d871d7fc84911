// verification: one tensor of one scheme checked against the reference (verify.hpp), as plain
// data. Each element has its own error bound; the tensor passes when every element is within it.
#pragma once

#include <string>

namespace tp_mlp {

struct Verification {
  std::string tensor;  // "Y", "dX", "dW1", ...
  double max_abs_diff = 0;
  double max_rel_diff = 0;         // max_abs_diff / max |reference|
  double tolerance = 0;            // the loosest element's bound / max |reference|
  double max_diff_over_bound = 0;  // the verdict: at most 1 passes
  long accumulated_terms = 0;      // terms summed along the longest path to an element
  bool passed = false;
};

}  // namespace tp_mlp
