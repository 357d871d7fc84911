// bench: timing loops whose records are allocated before the clock starts.
#include "tp_mlp/bench.hpp"

#include <algorithm>
#include <chrono>
#include <numeric>
#include <stdexcept>

#include "tp_mlp/gemm.hpp"
#include "tp_mlp/machine.hpp"
#include "tp_mlp/partition.hpp"
#include "tp_mlp/progress.hpp"

namespace tp_mlp {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// Of the calls whose elements are `element_bytes` wide: the largest tensor...
long largest(const std::vector<CollectiveCall>& calls, std::size_t element_bytes) {
  long elements = 0;
  for (const auto& c : calls)
    if (c.element_bytes == long(element_bytes)) elements = std::max(elements, c.elements);
  return elements;
}

// ...and the most any one rank holds of one: the first rank's block of its rows.
long largest_block(const std::vector<CollectiveCall>& calls, std::size_t element_bytes,
                   int tp_size) {
  long elements = 0;
  for (const auto& c : calls)
    if (c.element_bytes == long(element_bytes))
      elements = std::max(elements, block_of(c.rows(), tp_size, 0).count * c.row_length);
  return elements;
}

template <typename T>
void replay(const CollectiveCall& c, TpComm& tp, T* full, T* part) {
  switch (c.kind) {
    case Collective::all_reduce: tp.all_reduce_sum(full, c.elements); break;
    case Collective::all_gather: tp.all_gather_rows(part, full, c.rows(), c.row_length); break;
    case Collective::reduce_scatter:
      tp.reduce_scatter_rows(full, part, c.rows(), c.row_length);
      break;
  }
}

}  // namespace

Peaks measure_peaks(const World& world) {
  Peaks mine;
  if (world.is_root())
    mine = {measure_fma_peak_gflops(gemm_vector_isa()), measure_bf16_peak_gflops()};
  world.wait_idle();
  return {world.max(mine.fp32), world.max(mine.bf16)};
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

StepTiming time_steps(const Run& run, const Placement& placement, const TpComm& comm,
                      const std::string& what, const std::function<void()>& step) {
  const std::size_t iterations = std::size_t(run.cfg.iterations);
  // [total | comm | compute] per iteration, reduced to the slowest rank in one call, and the
  // compute again, summed over ranks for the mean; a rank that sits out contributes zeros.
  std::vector<double> record(3 * iterations, 0.0), compute_sum(iterations, 0.0);
  double* total = record.data();
  double* inside = total + iterations;
  double* compute = inside + iterations;
  if (placement.on_every_rank()) run.world.barrier();
  const int warmup = run.cfg.warmup;
  Progress progress(run.world.is_root(), what, std::size_t(warmup) + iterations);
  for (std::size_t i = 0; i < std::size_t(warmup) + iterations; ++i) {
    progress.tick(i);
    if (placement.computes_here()) {
      const double comm_before = comm.stats().seconds();
      const auto start = Clock::now();
      step();
      if (i >= std::size_t(warmup)) {
        const std::size_t n = i - std::size_t(warmup);
        total[n] = ms_since(start);
        inside[n] = (comm.stats().seconds() - comm_before) * 1e3;
        compute[n] = compute_sum[n] = total[n] - inside[n];
      }
    }
    // A scheme that runs alone has the others wait one step at a time, so that no wait lasts
    // longer than a step (--timeout), outside the timed region.
    if (!placement.on_every_rank()) run.world.wait_idle();
  }
  run.world.max_in_place(record);
  run.world.sum_in_place(compute_sum);
  const double computing = placement.on_every_rank() ? run.world.size() : 1;
  for (double& ms : compute_sum) ms /= computing;
  auto summary = [&](const double* first) { return summarize({first, first + iterations}); };
  return {summary(total), summary(inside), summary(compute), summary(compute_sum.data())};
}

template <typename E>
CollectiveReplay::Buffers<E>::Buffers(Workspace& ws, const std::vector<CollectiveCall>& calls,
                                      int tp_size)
    : full(ws.matrix<E>(1, largest(calls, sizeof(E)))),
      part(ws.matrix<E>(1, largest_block(calls, sizeof(E), tp_size))) {
  if (ws.planning()) return;
  full.setZero();  // zeros stay finite when summed
  part.setZero();
}

template <typename E>
void CollectiveReplay::Buffers<E>::run(const CollectiveCall& call, TpComm& comm) {
  if (call.elements > full.size())
    throw std::logic_error("a collective larger than its replay's buffers");
  replay(call, comm, full.data(), part.data());
}

CollectiveReplay::CollectiveReplay(Workspace& ws, const std::vector<CollectiveCall>& calls,
                                   int tp_size)
    : fp32_(ws, calls, tp_size), bf16_(ws, calls, tp_size), exact_(ws, calls, tp_size) {}

void CollectiveReplay::run(const std::vector<CollectiveCall>& calls, TpComm& comm) {
  for (const auto& c : calls) {
    if (c.element_bytes == long(sizeof(bfloat16)))
      bf16_.run(c, comm);
    else if (c.element_bytes == long(sizeof(std::int64_t)))
      exact_.run(c, comm);
    else
      fp32_.run(c, comm);
  }
}

Summary time_collectives(const Run& run, TpComm& comm, CollectiveReplay& replay,
                         const std::vector<CollectiveCall>& calls, int iterations) {
  std::vector<double> ms(
      static_cast<std::size_t>(iterations > 0 ? iterations : run.cfg.iterations));
  for (int i = 0; i < run.cfg.warmup; ++i) replay.run(calls, comm);
  run.world.barrier();
  for (double& t : ms) {
    const auto start = Clock::now();
    replay.run(calls, comm);
    t = ms_since(start);
  }
  run.world.max_in_place(ms);
  return summarize(ms);
}

}  // namespace tp_mlp
