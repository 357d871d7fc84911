// bench: warm-up, then timed passes. An iteration's time is the slowest rank's, because a
// tensor-parallel step is only done when every rank is.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tp_mlp/bf16.hpp"
#include "tp_mlp/collective.hpp"
#include "tp_mlp/comm.hpp"
#include "tp_mlp/mlp.hpp"
#include "tp_mlp/run.hpp"
#include "tp_mlp/timing.hpp"
#include "tp_mlp/workspace.hpp"

namespace tp_mlp {

// One core's peaks in GFLOP/s, measured on rank 0 while the others sleep (so that
// oversubscribed ranks cannot halve them), and shared with every rank.
struct Peaks {
  double fp32 = 0;  // FMA
  double bf16 = 0;  // bf16 dot products; 0 without native bf16
};
Peaks measure_peaks(const World& world);

Summary summarize(std::vector<double> ms);

// Times `step` over --warmup + --iterations repetitions on the ranks where the scheme is
// placed, the others waiting idle. Per iteration, each of total, comm (time inside the
// collectives of `comm`) and compute is the slowest rank's. `what` names the loop in the
// progress shown at a terminal.
StepTiming time_steps(const Run& run, const Placement& placement, const TpComm& comm,
                      const std::string& what, const std::function<void()>& step);

// Collectives run bare, on buffers from the workspace, large enough for any of `calls`: the
// body of the floor's loop. Each is replayed in its element type: fp32, bf16 (with its own
// MPI_Op) or the invariant schemes' 64-bit integers.
class CollectiveReplay {
 public:
  CollectiveReplay(Workspace& ws, const std::vector<CollectiveCall>& calls, int tp_size);
  // Every call in order, once, through `comm`; each must fit what the replay was built for.
  void run(const std::vector<CollectiveCall>& calls, TpComm& comm);

 private:
  // The largest whole tensor of one element type E, and one rank's share of it, zeros.
  template <typename E>
  struct Buffers {
    Tensor<E> full, part;
    Buffers(Workspace& ws, const std::vector<CollectiveCall>& calls, int tp_size);
    void run(const CollectiveCall& call, TpComm& comm);
  };
  Buffers<float> fp32_;
  Buffers<bfloat16> bf16_;
  Buffers<std::int64_t> exact_;
};

// The floor under a step's communication: the same collectives, of the same sizes, on the
// same communicator, with nothing else in the loop.
// `iterations` (default --iterations) after --warmup untimed ones.
Summary time_collectives(const Run& run, TpComm& comm, CollectiveReplay& replay,
                         const std::vector<CollectiveCall>& calls, int iterations = 0);

}  // namespace tp_mlp
