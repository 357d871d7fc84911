// naive_mlp: the split the tutorial promises to compare with and never builds. W1 and W2 are
// both split by rows, so each rank's X·W1 is only a partial sum of the pre-activation, and
// GeLU is not linear: the whole [tokens, 4H] pre-activation must be all-reduced before GeLU,
// and Y after W2. Two all-reduces and five times Megatron's bytes. Forward only.
#pragma once

#include "tp_mlp/mlp.hpp"
#include "tp_mlp/partition.hpp"

namespace tp_mlp {

class NaiveMlp final : public MlpScheme {
 public:
  NaiveMlp(const Config& cfg, TpComm& tp);
  // What the constructor allocates for the rows `hidden` of H and `columns` of 4H.
  static SchemeBytes bytes(const Config& cfg, Block hidden, Block columns);

  Scheme scheme() const override { return Scheme::naive; }
  long tokens_here() const override { return tokens_; }
  long weight_bytes() const override;
  const Matrix& forward(const Matrix& x) override;

 private:
  TpComm& tp_;
  const bool bias_;
  const long tokens_;
  const Block hidden_;   // rows of W1: this rank's share of H
  const Block columns_;  // rows of W2, and the columns of the pre-activation it activates
  Matrix w1_rows_, w2_rows_, b1_, b2_, h_full_, y_;
};

}  // namespace tp_mlp
