// machine: /proc/meminfo, getrusage and a register-only FMA loop.
#include "tp_mlp/machine.hpp"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <limits>
#include <string>

#include <sys/resource.h>
#include <unistd.h>

namespace tp_mlp {

double available_memory_bytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  double kib = 0;
  while (meminfo >> key >> kib) {
    if (key == "MemAvailable:") return kib * 1024.0;
    meminfo.ignore(256, '\n');
  }
  return std::numeric_limits<double>::infinity();  // unknown: nothing to check against
}

double peak_rss_bytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return double(usage.ru_maxrss) * 1024.0;  // Linux reports KiB
}

double current_rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  double pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * double(sysconf(_SC_PAGESIZE));
}

double measure_fma_peak_gflops() {
#if defined(__AVX512F__)
  constexpr int vector_bytes = 64;
#elif defined(__AVX2__) || defined(__FMA__)
  constexpr int vector_bytes = 32;
#else
  constexpr int vector_bytes = 16;
#endif
  using Vec = float __attribute__((vector_size(vector_bytes)));
  constexpr int lanes = vector_bytes / sizeof(float);
  // Independent chains hide the FMA latency: latency x units is 8 on current x86 cores.
  constexpr int chains = 12;
  constexpr long iterations = 1L << 21;
  // volatile: the compiler must not know the values, or it could fold the whole loop.
  volatile float scale_in = 0.999999f, offset_in = 1e-6f;
  const Vec scale = Vec{} + scale_in, offset = Vec{} + offset_in;  // x -> x*scale+offset tends to 1

  // Best of many short runs for about 0.2 s: the core reaches its full clock after a few
  // milliseconds of work, and the best run is the one nothing else disturbed.
  constexpr double kMeasureSeconds = 0.2;
  double best_seconds = std::numeric_limits<double>::infinity(), spent = 0;
  float sum = 0.0f;
  while (spent < kMeasureSeconds) {
    Vec acc[chains];
    for (int i = 0; i < chains; ++i) acc[i] = Vec{} + float(i);
    const auto start = std::chrono::steady_clock::now();
    for (long n = 0; n < iterations; ++n)
      for (Vec& x : acc) x = x * scale + offset;
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    best_seconds = std::min(best_seconds, elapsed.count());
    spent += elapsed.count();
    for (const Vec& x : acc) sum += x[0];
  }
  volatile float sink = sum;  // the results are used, so the loop cannot be dropped
  (void)sink;
  return 2.0 * lanes * chains * double(iterations) / best_seconds * 1e-9;  // an FMA is 2 FLOPs
}

}  // namespace tp_mlp
