// bench: warm-up, then timed passes. An iteration's time is the slowest rank's, because a
// tensor-parallel step is only done when every rank is.
#pragma once

#include <vector>

#include "tp_mlp/analysis.hpp"
#include "tp_mlp/comm.hpp"
#include "tp_mlp/mlp.hpp"

namespace tp_mlp {

// One core's FMA peak in GFLOP/s, measured on rank 0 while the others sleep (so that
// oversubscribed ranks cannot halve it), and shared with every rank.
double measure_fma_peak(const World& world);

struct Summary {  // milliseconds
  double mean = 0, median = 0, min = 0, max = 0;
};
Summary summarize(std::vector<double> ms);

struct StepTiming {
  Summary total;    // the whole step
  Summary comm;     // inside the collectives
  Summary compute;  // the rest: GEMMs, GeLU, biases
};

// One step is forward(x), and with `dy` non-empty backward(dy) after it. Per iteration, each
// of total, comm and compute is the slowest rank's. With `on_every_rank` false, only ranks
// given an `mlp` run it (serial: world rank 0) while the rest sleep, so that it is timed
// with a core to itself.
StepTiming time_steps(MlpScheme* mlp, bool on_every_rank, const Matrix& x, const Matrix& dy,
                      TpComm& tp, const World& world, int warmup, int iterations);

// A list of collectives run bare, on buffers allocated once: the body of the floor's loop.
class CollectiveReplay {
 public:
  CollectiveReplay(const std::vector<CollectiveCall>& calls, TpComm& tp);
  void run();  // every call in order, once

 private:
  std::vector<CollectiveCall> calls_;
  TpComm& tp_;
  std::vector<float> full_, part_;  // the largest whole tensor, and one rank's share of it
};

// The floor under a step's communication: the same collectives, of the same sizes, on the
// same communicator, with nothing else in the loop.
Summary time_collectives(const std::vector<CollectiveCall>& calls, TpComm& tp,
                         const World& world, int warmup, int iterations);

}  // namespace tp_mlp
