// timing: what a timed loop measured, in milliseconds, as plain data (bench.hpp measures it).
#pragma once

namespace tp_mlp {

struct Summary {  // milliseconds
  double mean = 0, median = 0, min = 0, max = 0;
};

// Per iteration, the slowest rank's: a step is done only when every rank is.
struct StepTiming {
  Summary total;         // the whole step
  Summary comm;          // inside the collectives
  Summary compute;       // the rest: GEMMs, the activation, biases
  Summary compute_mean;  // the mean over the ranks that computed: compute / this = imbalance
};

}  // namespace tp_mlp
