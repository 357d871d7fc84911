// machine: what this node has and what this process used, read from the OS or measured.
#pragma once

namespace tp_mlp {

double available_memory_bytes();  // MemAvailable from /proc/meminfo
double peak_rss_bytes();          // this process's high-water resident set
double current_rss_bytes();       // this process's resident set now

// One core's single-precision FMA peak at the widest vector this binary was compiled for
// (so with -march=native, the CPU's), measured by a register-only loop in about 0.2 s.
double measure_fma_peak_gflops();

}  // namespace tp_mlp
