// agreement: how one tensor on one rank compares with its float64 reference, element by
// element, each element against its own error bound; and the verdict over every rank. Shared
// by the blocks' references (verify.hpp, attention_verify.hpp).
#pragma once

#include <cmath>
#include <limits>
#include <string>

#include "tp_mlp/comm.hpp"
#include "tp_mlp/matrix.hpp"
#include "tp_mlp/verification.hpp"

namespace tp_mlp {

struct Agreement {
  double diff = 0, scale = 0, bound = 0, worst = 0;
  // `row_extra` [rows]: what each row's bound adds (an invariant scheme's exact sum's grid).
  template <typename Got>
  void add(const Got& got, const ConstMatrixDRef& ref, const ConstMatrixDRef& ref_bound,
           const double* row_extra = nullptr) {
    add_each(got, ref,
             [&](long r, long c) { return ref_bound(r, c) + (row_extra ? row_extra[r] : 0.0); });
  }
  // Every element against one bound.
  template <typename Got>
  void add_within(const Got& got, const ConstMatrixDRef& ref, double ref_bound) {
    add_each(got, ref, [&](long, long) { return ref_bound; });
  }

 private:
  template <typename Got, typename BoundOf>
  void add_each(const Got& got, const ConstMatrixDRef& ref, BoundOf bound_of) {
    for (long r = 0; r < ref.rows(); ++r)
      for (long c = 0; c < ref.cols(); ++c) {
        const double error = std::abs(double(got(r, c)) - ref(r, c));
        const double b = bound_of(r, c);
        if (!std::isfinite(error)) worst = std::numeric_limits<double>::infinity();
        diff = std::max(diff, error);
        scale = std::max(scale, std::abs(ref(r, c)));
        bound = std::max(bound, b);
        // An element whose bound is 0 must be exact: 0/0 passes, anything else fails.
        worst = std::max(worst, error == 0 ? 0.0 : error / b);
      }
  }
};

// The verdict on `tensor` over every rank (every rank must call it, in the same order):
// `terms`, the terms summed along the longest path to an element, is reported beside it.
Verification conclude(const std::string& tensor, const Agreement& local, long terms,
                      const World& world);

}  // namespace tp_mlp
