// machine: /proc/meminfo and getrusage.
#include "tp_mlp/machine.hpp"

#include <fstream>
#include <limits>
#include <string>

#include <sys/resource.h>

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

}  // namespace tp_mlp
