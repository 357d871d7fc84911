// machine: what this node has and what this process used, read from the OS or measured.
#pragma once

namespace tp_mlp {

double available_memory_bytes();  // MemAvailable from /proc/meminfo
double peak_rss_bytes();          // this process's high-water resident set
double current_rss_bytes();       // this process's resident set now

// The width of the vectors fp32 arithmetic runs in: what a CPU has, and what a GEMM backend
// uses of it.
enum class VectorIsa { sse, avx2, avx512 };
const char* vector_isa_name(VectorIsa isa);  // "SSE", "AVX2", "AVX-512"

// One core's fp32 FMA peak with the widest vectors both this CPU and `widest` allow: the peak
// the GEMM backend's kernels can reach (gemm.hpp: gemm_vector_isa), measured by a
// register-only loop in about 0.2 s.
double measure_fma_peak_gflops(VectorIsa widest);

// Whether the CPU (and its OS) has AVX512_BF16, found at run time: native bf16 dot products.
bool cpu_has_native_bf16();
// Whether the CPU has AMX's bf16 tiles and the OS lets this process use them (asked here).
bool cpu_has_amx_bf16();
// One core's bf16 dot-product peak in GFLOP/s, measured like the FMA peak: vdpbf16ps's, or the
// AMX tiles' where they run (as oneDNN's bf16 GEMMs then do); 0 on a CPU without native bf16.
double measure_bf16_peak_gflops();

}  // namespace tp_mlp
