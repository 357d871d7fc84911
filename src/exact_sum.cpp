// exact_sum: the shared grid, the rounding onto it, the integer sums (see exact_sum.hpp).
#include "tp_mlp/exact_sum.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

namespace tp_mlp {
namespace {

// Within ±2^51, x + 1.5·2^52 keeps x's integer part in its low mantissa bits, rounded to
// nearest (even on ties): the bits minus those of 1.5·2^52 are that integer, and the reverse
// turns an integer back into a double, both exactly and without a branch, so that the loops
// vectorise (AVX2 has no packed conversion between doubles and 64-bit integers).
constexpr double kMagic = 0x1.8p52;

std::int64_t bits_of(double x) {
  std::int64_t i;
  std::memcpy(&i, &x, sizeof i);
  return i;
}

double double_of(std::int64_t i) {
  double x;
  std::memcpy(&x, &i, sizeof x);
  return x;
}

const std::int64_t kMagicBits = bits_of(kMagic);

// The grid's exponent leaves this much headroom below 2^51: 2^49 · 2 for an input read as bf16
// (at most 2^-8 larger than its float max) and for the half steps of rounding every block.
constexpr int kGridBits = 49;

}  // namespace

ExactSum::ExactSum(Workspace& ws, TpComm& tp, Outside outside, long rows, long cols, double terms)
    : tp_(tp),
      outside_(outside),
      terms_(terms),
      here_rows_(tokens_outside(outside, rows, tp)),
      acc_(ws.matrix<std::int64_t>(rows, cols)),
      here_(ws.matrix<std::int64_t>(outside == Outside::sequence_parallel ? here_rows_.count : 0,
                                    cols)),
      step_(ws.matrix<double>(rows, 1)),
      sum_(ws.matrix<float>(here_rows_.count, cols)) {}

Block ExactSum::summed(Block rows) const {
  const long end = std::min(rows.end(), acc_.rows());
  return {rows.first, std::max(0L, end - rows.first)};
}

void ExactSum::set_grid(Block rows, float* row_max, double weight_max) {
  rows = summed(rows);
  tp_.all_reduce_max(row_max, rows.count);  // exact: the same grid on every rank
  for (long r = 0; r < rows.count; ++r) {
    const double bound = terms_ * double(row_max[r]) * weight_max;
    int exponent = 0;
    std::frexp(bound, &exponent);  // bound < 2^exponent (a zero row: any grid will do)
    // A row with a NaN or an infinity stays one: its sums come out NaN, and fail verification.
    step_(rows.first + r, 0) = std::isfinite(bound) ? std::ldexp(1.0, exponent - kGridBits)
                                                    : std::numeric_limits<double>::quiet_NaN();
  }
}

void ExactSum::clear(Block rows) {
  rows = summed(rows);
  acc_.middleRows(rows.first, rows.count).setZero();
}

void ExactSum::add(const ConstMatrixRef& partial, long first_row, long first_col) {
  const long rows = summed({first_row, partial.rows()}).count;  // the padding's rows: none
  // In locals: the integers written below are longs, as Eigen's sizes are, so the compiler
  // would read the sizes again after every write, and not vectorise.
  const long cols = partial.cols(), stride = partial.outerStride(), acc_cols = acc_.cols();
  for (long r = 0; r < rows; ++r) {
    const double inverse = 1.0 / step_(first_row + r, 0);  // a power of two: exact
    const float* from = partial.data() + r * stride;
    std::int64_t* to = acc_.data() + (first_row + r) * acc_cols + first_col;
    for (long c = 0; c < cols; ++c)
      to[c] += bits_of(double(from[c]) * inverse + kMagic) - kMagicBits;
  }
}

void ExactSum::to_floats(const std::int64_t* sums, Block rows) {
  const long cols = acc_.cols();
  for (long r = 0; r < rows.count; ++r) {
    const double step = step_(here_rows_.first + rows.first + r, 0);
    const std::int64_t* from = sums + r * cols;
    float* to = sum_.data() + (rows.first + r) * cols;
    for (long c = 0; c < cols; ++c)
      to[c] = float((double_of(from[c] + kMagicBits) - kMagic) * step);
  }
}

MatrixRef ExactSum::leave() {
  if (outside_ == Outside::replicated) {
    tp_.all_reduce_sum(acc_.data(), acc_.size());  // g: integers, in any order
    to_floats(acc_.data(), {0, acc_.rows()});
  } else {
    tp_.reduce_scatter_rows(acc_.data(), here_.data(), acc_.rows(), acc_.cols());  // ḡ
    to_floats(here_.data(), {0, here_.rows()});
  }
  return sum_;
}

MatrixRef ExactSum::leave_unsummed() {
  if (outside_ != Outside::replicated)
    throw std::logic_error("a sequence-parallel exact sum leaves through its reduce-scatter");
  to_floats(acc_.data(), {0, acc_.rows()});
  return sum_;
}

void ExactSum::start_leaving(Block rows) {
  auto part = acc_.middleRows(rows.first, rows.count);
  tp_.start_all_reduce_sum(part.data(), part.size());
}

MatrixRef ExactSum::finish_leaving() {
  tp_.finish_all();
  to_floats(acc_.data(), {0, acc_.rows()});
  return sum_;
}

}  // namespace tp_mlp
