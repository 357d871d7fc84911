// verification: one tensor of one scheme checked against the reference (verify.hpp), as plain
// data. Each element has its own error bound; the tensor passes when every element is within it.
#pragma once

#include <cstdint>
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

// One tensor's digest (digest.hpp), of the whole master-shaped tensor, and whether every copy
// of it in the job (each rank's, or each TP group's shards added up) had the same.
struct TensorDigest {
  std::string tensor;  // "Y", "dX", "dW1", ...
  std::uint64_t value = 0;
  bool copies_match = true;
};

}  // namespace tp_mlp
