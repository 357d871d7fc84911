// bench: timing loops with preallocated records, so timing allocates nothing.
#include "tp_mlp/bench.hpp"

#include <algorithm>
#include <chrono>
#include <numeric>

namespace tp_mlp {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

}  // namespace

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

SchemeTiming time_forward(MlpScheme* mlp, bool on_every_rank, const Matrix& x, TpComm& tp,
                          const World& world, int warmup, int iterations) {
  // [forward | comm | compute] per iteration, reduced to the slowest rank in one call;
  // a rank that sits out contributes zeros.
  std::vector<double> record(3 * std::size_t(iterations), 0.0);
  double* forward = record.data();
  double* comm = forward + iterations;
  double* compute = comm + iterations;
  if (on_every_rank) world.barrier();
  if (mlp) {
    for (int i = 0; i < warmup; ++i) mlp->forward(x);
    for (int i = 0; i < iterations; ++i) {
      const double comm_before = tp.stats().all_reduce.seconds;
      const auto start = Clock::now();
      mlp->forward(x);
      forward[i] = ms_since(start);
      comm[i] = (tp.stats().all_reduce.seconds - comm_before) * 1e3;
      compute[i] = forward[i] - comm[i];
    }
  }
  if (!on_every_rank) world.wait_idle();
  world.max_in_place(record);
  auto summary = [&](const double* first) { return summarize({first, first + iterations}); };
  return {summary(forward), summary(comm), summary(compute)};
}

Summary time_allreduces(const std::vector<long>& elements, TpComm& tp, const World& world,
                        int warmup, int iterations) {
  const long largest = elements.empty() ? 0 : *std::max_element(elements.begin(), elements.end());
  std::vector<float> buffer(std::size_t(largest), 0.0f);  // zeros stay finite when summed
  std::vector<double> ms(static_cast<std::size_t>(iterations));
  auto step = [&] {
    for (long n : elements) tp.all_reduce_sum(buffer.data(), n);
  };
  for (int i = 0; i < warmup; ++i) step();
  world.barrier();
  for (int i = 0; i < iterations; ++i) {
    const auto start = Clock::now();
    step();
    ms[std::size_t(i)] = ms_since(start);
  }
  world.max_in_place(ms);
  return summarize(ms);
}

}  // namespace tp_mlp
