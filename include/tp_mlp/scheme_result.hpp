// scheme_result: everything a run learnt about one scheme, as plain data with no MPI and no
// printing, filled in stage by stage (comparison.hpp); metrics.hpp turns it into the numbers the
// report prints.
#pragma once

#include <vector>

#include "tp_mlp/collective.hpp"
#include "tp_mlp/config.hpp"
#include "tp_mlp/timing.hpp"
#include "tp_mlp/verification.hpp"

namespace tp_mlp {

// One direction of one scheme: what theory predicts and what was counted.
struct PassResult {
  std::vector<CollectiveCall> formula;
  CommStats counted;  // in one pass, by the communication layer
  double flops_per_rank = 0;
};

struct SchemeResult {
  Scheme scheme = Scheme::megatron;
  long weight_bytes = 0;      // this rank's W1 and W2, as allocated
  double boundary_bytes = 0;  // activations outside the TP region, per rank
  bool has_backward = false;
  PassResult forward, backward;
  Verification output;                  // Y
  std::vector<Verification> gradients;  // dX, dW1, dW2 (db1, db2)
  std::vector<Verification> blocks;     // a layer's: each block from its own input
  std::vector<TensorDigest> digests;    // Y, and with --backward dX and every weight gradient
  StepTiming timing;                    // forward passes
  Summary floor;                        // bare collectives of the forward's sizes
  StepTiming train_timing;              // forward + backward
  Summary train_floor;
};

}  // namespace tp_mlp
