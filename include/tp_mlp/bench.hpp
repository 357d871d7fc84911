// bench: warm-up, then timed forward passes. An iteration's time is the slowest rank's,
// because a tensor-parallel step is only done when every rank is.
#pragma once

#include <vector>

#include "tp_mlp/comm.hpp"
#include "tp_mlp/mlp.hpp"

namespace tp_mlp {

struct Summary {  // milliseconds
  double mean = 0, median = 0, min = 0, max = 0;
};
Summary summarize(std::vector<double> ms);

struct SchemeTiming {
  Summary forward;  // whole forward pass
  Summary comm;     // inside the collectives
  Summary compute;  // the rest: GEMMs and GeLU
};

// Per iteration, each of forward, comm and compute is the slowest rank's. With
// `on_every_rank` false, only the ranks given an `mlp` run it (serial: world rank 0) while
// the rest sleep, so that it is timed with a core to itself.
SchemeTiming time_forward(MlpScheme* mlp, bool on_every_rank, const Matrix& x, TpComm& tp,
                          const World& world, int warmup, int iterations);

// The floor under a scheme's communication: bare all-reduces of the same sizes on the same
// communicator, with nothing else in the loop.
Summary time_allreduces(const std::vector<long>& elements, TpComm& tp, const World& world,
                        int warmup, int iterations);

}  // namespace tp_mlp
