// bench: timing loops whose records are allocated before the clock starts.
#include "tp_mlp/bench.hpp"

#include <algorithm>
#include <chrono>
#include <numeric>

#include "tp_mlp/machine.hpp"

namespace tp_mlp {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

}  // namespace

double measure_fma_peak(const World& world) {
  const double mine = world.is_root() ? measure_fma_peak_gflops() : 0.0;
  world.wait_idle();
  return world.max(mine);
}

Summary summarize(std::vector<double> ms) {
  Summary s;
  if (ms.empty()) return s;
  std::sort(ms.begin(), ms.end());
  const std::size_t n = ms.size();
  s.mean = std::accumulate(ms.begin(), ms.end(), 0.0) / double(n);
  s.median = n % 2 ? ms[n / 2] : 0.5 * (ms[n / 2 - 1] + ms[n / 2]);
  s.min = ms.front();
  s.max = ms.back();
  return s;
}

StepTiming time_steps(MlpScheme* mlp, bool on_every_rank, const Matrix& x, const Matrix& dy,
                      TpComm& tp, const World& world, int warmup, int iterations) {
  auto step = [&] {
    mlp->forward(x);
    if (dy.size()) mlp->backward(dy);
  };
  // [total | comm | compute] per iteration, reduced to the slowest rank in one call;
  // a rank that sits out contributes zeros.
  std::vector<double> record(3 * std::size_t(iterations), 0.0);
  double* total = record.data();
  double* comm = total + iterations;
  double* compute = comm + iterations;
  if (on_every_rank) world.barrier();
  if (mlp) {
    for (int i = 0; i < warmup; ++i) step();
    for (int i = 0; i < iterations; ++i) {
      const double comm_before = tp.stats().seconds();
      const auto start = Clock::now();
      step();
      total[i] = ms_since(start);
      comm[i] = (tp.stats().seconds() - comm_before) * 1e3;
      compute[i] = total[i] - comm[i];
    }
  }
  if (!on_every_rank) world.wait_idle();
  world.max_in_place(record);
  auto summary = [&](const double* first) { return summarize({first, first + iterations}); };
  return {summary(total), summary(comm), summary(compute)};
}

CollectiveReplay::CollectiveReplay(const std::vector<CollectiveCall>& calls, TpComm& tp)
    : calls_(calls), tp_(tp) {
  long largest = 0;
  for (const auto& c : calls) largest = std::max(largest, c.elements);
  full_.assign(std::size_t(largest), 0.0f);  // zeros stay finite when summed
  part_.assign(std::size_t(largest / tp.size()), 0.0f);
}

void CollectiveReplay::run() {
  for (const auto& c : calls_) {
    const long local = c.elements / tp_.size();
    switch (c.kind) {
      case Collective::all_reduce: tp_.all_reduce_sum(full_.data(), c.elements); break;
      case Collective::all_gather: tp_.all_gather(part_.data(), full_.data(), local); break;
      case Collective::reduce_scatter: tp_.reduce_scatter_sum(full_.data(), part_.data(), local); break;
    }
  }
}

Summary time_collectives(const std::vector<CollectiveCall>& calls, TpComm& tp,
                         const World& world, int warmup, int iterations) {
  CollectiveReplay replay(calls, tp);
  std::vector<double> ms(static_cast<std::size_t>(iterations));
  for (int i = 0; i < warmup; ++i) replay.run();
  world.barrier();
  for (int i = 0; i < iterations; ++i) {
    const auto start = Clock::now();
    replay.run();
    ms[std::size_t(i)] = ms_since(start);
  }
  world.max_in_place(ms);
  return summarize(ms);
}

}  // namespace tp_mlp
