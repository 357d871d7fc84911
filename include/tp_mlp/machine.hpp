// machine: what this node has and what this process used, read from the OS.
#pragma once

namespace tp_mlp {

double available_memory_bytes();  // MemAvailable from /proc/meminfo
double peak_rss_bytes();          // this process's high-water resident set

}  // namespace tp_mlp
