// exact_sum: partial sums added in an order that cannot matter, for the --invariant schemes.
//
// Float addition is not associative: a tensor-parallel sum over F gives different bits at
// different TP sizes, because the ranks hold different blocks of F and their partial sums meet
// in different orders. Here every block's partial sum is rounded once onto a fixed-point grid
// that every rank shares and then added as a 64-bit integer: integer addition is associative, so
// the sum has the same bits whichever rank holds which block, in any order, over any MPI and
// any all-reduce algorithm (MPI's own MPI_SUM on MPI_INT64_T). The partial sums travel as
// integers: twice the bytes of fp32.
//
// The grid is per row: a power of two, 2^(e − 49) with 2^e ≥ terms · max|input| · max|weight|
// of that row over the whole of F, so that the sum of every block's rounded partial (at most
// 2^50 in magnitude, plus half a step per block) fits the 2^51 within which the conversions
// below are exact. The row's largest input comes from this rank's terms and one MAX all-reduce
// of a float per row over the group; the maximum is exact, so the grid is the same on every
// rank and at every T. Rounding a block onto it errs by at most half a step, 2^(e − 50): the
// reference adds that, per block, to each element's bound (verify.cpp).
#pragma once

#include <cstdint>

#include "tp_mlp/comm.hpp"
#include "tp_mlp/matrix.hpp"
#include "tp_mlp/partition.hpp"
#include "tp_mlp/region.hpp"
#include "tp_mlp/workspace.hpp"

namespace tp_mlp {

// Every grid step is under 2^-48 of its row's terms · max|input| · max|weight|, so a partial
// sum rounded onto it moves by at most this share of that product (what a reference adds, per
// partial sum, to its bound).
inline constexpr double kExactSumHalfStep = 0x1p-49;

class ExactSum {
 public:
  // Sums [rows, cols] of partial sums over `terms` products each (F for Y, p·F for dX). With
  // sequence parallelism, each rank is left with its block of the rows. Rows past `rows` (a
  // padding the products run on) are ignored wherever they are passed.
  ExactSum(Workspace& ws, TpComm& tp, Outside outside, long rows, long cols, double terms);

  // The grid of rows `rows` from `row_max` [rows.count] (this rank's largest |input| per row;
  // max-reduced over the group in place) and `weight_max` (the largest |weight| of the group).
  void set_grid(Block rows, float* row_max, double weight_max);
  // Rows `rows` start from zero.
  void clear(Block rows);
  // One block's partial sums of the rows from `first_row` (and the columns from `first_col`),
  // rounded onto the grid and added.
  void add(const ConstMatrixRef& partial, long first_row, long first_col = 0);

  // Leaving the region: the integers summed over the group (all-reduced in place, or
  // reduce-scattered to this rank's block of rows), then as floats [rows here, cols].
  MatrixRef leave();
  // Or as floats without a sum over the group: when no other rank adds to an element this one
  // reads, its integers are the sum already (at every T, the same bits as leave()'s).
  MatrixRef leave_unsummed();
  // Overlapped (replicated only): rows set off to be summed while the rank computes...
  void start_leaving(Block rows);
  // ...and all of them finished and turned into floats.
  MatrixRef finish_leaving();

 private:
  void to_floats(const std::int64_t* sums, Block rows);  // into sum_'s rows
  Block summed(Block rows) const;  // those of `rows` that are summed: the padding's are not

  TpComm& tp_;
  const Outside outside_;
  const double terms_;
  const Block here_rows_;      // the rows this rank keeps
  Tensor<std::int64_t> acc_;   // [rows, cols], the integers
  Tensor<std::int64_t> here_;  // [rows here, cols], their reduce-scattered block
  Tensor<double> step_;        // [rows, 1], each row's grid step, a power of two
  Tensor<float> sum_;          // [rows here, cols], the sum as floats
};

}  // namespace tp_mlp
