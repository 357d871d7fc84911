// machine: /proc/meminfo, getrusage, and register-only loops of the FMA and bf16 instructions.
#include "tp_mlp/machine.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <limits>
#include <string>

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cpuid.h>
#include <immintrin.h>

namespace tp_mlp {
namespace {

// Register-only loops of one instruction over independent chains (enough to hide its latency
// at full throughput: measured 16 for vdpbf16ps, 8 for FMA on Zen 5; 24 leave a margin and fit
// the 32 AVX-512 registers), each compiled for its instruction set and run only where the CPU
// has it. The accumulators start from values the compiler cannot know, and their sum is
// returned, so that nothing can be folded or dropped.
constexpr int kChains = 24;
constexpr int kChainsAvx2 = 12;      // 16 registers
constexpr long kIterations = 20000;  // 0.1-0.5 ms a run

__attribute__((target("avx512f"))) float fma_avx512(long iterations, float seed) {
  const __m512 scale = _mm512_set1_ps(0.999999f), offset = _mm512_set1_ps(1e-3f);
  __m512 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(seed + float(i));
  for (long n = 0; n < iterations; ++n)
#pragma GCC unroll 24
    for (__m512& x : acc) x = _mm512_fmadd_ps(x, scale, offset);
  __m512 sum = _mm512_setzero_ps();
  for (const __m512& x : acc) sum = _mm512_add_ps(sum, x);
  return _mm512_cvtss_f32(sum);
}

__attribute__((target("avx2,fma"))) float fma_avx2(long iterations, float seed) {
  const __m256 scale = _mm256_set1_ps(0.999999f), offset = _mm256_set1_ps(1e-3f);
  __m256 acc[kChainsAvx2];
  for (int i = 0; i < kChainsAvx2; ++i) acc[i] = _mm256_set1_ps(seed + float(i));
  for (long n = 0; n < iterations; ++n)
#pragma GCC unroll 12
    for (__m256& x : acc) x = _mm256_fmadd_ps(x, scale, offset);
  __m256 sum = _mm256_setzero_ps();
  for (const __m256& x : acc) sum = _mm256_add_ps(sum, x);
  return _mm256_cvtss_f32(sum);
}

float mul_add_sse(long iterations, float seed) {
  const __m128 scale = _mm_set1_ps(0.999999f), offset = _mm_set1_ps(1e-3f);
  __m128 acc[kChainsAvx2];
  for (int i = 0; i < kChainsAvx2; ++i) acc[i] = _mm_set1_ps(seed + float(i));
  for (long n = 0; n < iterations; ++n)
#pragma GCC unroll 12
    for (__m128& x : acc) x = _mm_add_ps(_mm_mul_ps(x, scale), offset);
  __m128 sum = _mm_setzero_ps();
  for (const __m128& x : acc) sum = _mm_add_ps(sum, x);
  return _mm_cvtss_f32(sum);
}

__attribute__((target("avx512bf16,avx512f,avx512bw,avx512vl"))) float dot_bf16(long iterations,
                                                                               float seed) {
  const __m512bh a = (__m512bh)_mm512_set1_epi16(0x3A83);  // about 1e-3 in every lane
  __m512 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(seed + float(i));
  for (long n = 0; n < iterations; ++n)
#pragma GCC unroll 24
    for (__m512& x : acc) x = _mm512_dpbf16_ps(x, a, a);
  __m512 sum = _mm512_setzero_ps();
  for (const __m512& x : acc) sum = _mm512_add_ps(sum, x);
  return _mm512_cvtss_f32(sum);
}

// AMX: eight tiles of 16 rows of 64 bytes: four accumulators C [16, 16] floats, each the sum of
// A [16, 32] · B [32, 16] bf16 products per instruction (TDPBF16PS), independent of each other
// so that the unit never waits on one. Where oneDNN finds AMX it runs its bf16 GEMMs there,
// many times the vector peak, which would then be no bound at all.
struct TileConfig {
  std::uint8_t palette = 1;
  std::uint8_t start_row = 0;
  std::uint8_t reserved[14] = {};
  std::uint16_t bytes_per_row[16] = {};
  std::uint8_t rows[16] = {};
};
constexpr int kTileRows = 16, kTileBytesPerRow = 64;
constexpr double kTileFlops = 2.0 * 16 * 16 * 32;  // one TDPBF16PS

__attribute__((target("amx-tile,amx-bf16"))) float dot_tiles(long iterations, float seed) {
  TileConfig config;
  for (int t = 0; t < 8; ++t) {
    config.bytes_per_row[t] = kTileBytesPerRow;
    config.rows[t] = kTileRows;
  }
  _tile_loadconfig(&config);
  alignas(64) std::uint16_t operand[kTileRows * kTileBytesPerRow / 2];  // bf16
  alignas(64) float accumulator[kTileRows * kTileBytesPerRow / 4];
  std::fill(std::begin(operand), std::end(operand), std::uint16_t(0x3A83));  // about 1e-3
  std::fill(std::begin(accumulator), std::end(accumulator), seed);
  _tile_loadd(0, accumulator, kTileBytesPerRow);
  _tile_loadd(1, accumulator, kTileBytesPerRow);
  _tile_loadd(2, accumulator, kTileBytesPerRow);
  _tile_loadd(3, accumulator, kTileBytesPerRow);
  _tile_loadd(4, operand, kTileBytesPerRow);  // the A tiles
  _tile_loadd(5, operand, kTileBytesPerRow);
  _tile_loadd(6, operand, kTileBytesPerRow);  // the B tiles (each operand its own tile)
  _tile_loadd(7, operand, kTileBytesPerRow);
  for (long n = 0; n < iterations; ++n) {
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  float sum = 0;
  _tile_stored(0, accumulator, kTileBytesPerRow);
  sum += accumulator[0];
  _tile_stored(3, accumulator, kTileBytesPerRow);
  sum += accumulator[0];
  _tile_release();
  return sum;
}

// The best rate over many short runs for about 0.2 s: the core reaches its full clock after
// a few milliseconds of work, and the best run is the one nothing else disturbed.
double best_gflops(float (*kernel)(long, float), double flops_per_iteration) {
  constexpr double kMeasureSeconds = 0.2;
  volatile float seed = 1.0f;  // unknown to the compiler
  double best_seconds = std::numeric_limits<double>::infinity(), spent = 0;
  float sink = 0;
  while (spent < kMeasureSeconds) {
    const auto start = std::chrono::steady_clock::now();
    sink += kernel(kIterations, seed);
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    best_seconds = std::min(best_seconds, elapsed.count());
    spent += elapsed.count();
  }
  volatile float used = sink;  // the results are used, so no run can be dropped
  (void)used;
  return flops_per_iteration * double(kIterations) / best_seconds * 1e-9;
}

}  // namespace

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

bool cpu_has_native_bf16() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl");
}

const char* vector_isa_name(VectorIsa isa) {
  switch (isa) {
    case VectorIsa::avx512: return "AVX-512";
    case VectorIsa::avx2: return "AVX2";
    case VectorIsa::sse: return "SSE";
  }
  return "?";
}

namespace {

// This CPU's widest, found at run time.
VectorIsa cpu_vector_isa() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return VectorIsa::avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return VectorIsa::avx2;
  return VectorIsa::sse;
}

}  // namespace

double measure_fma_peak_gflops(VectorIsa widest) {
  switch (std::min(cpu_vector_isa(), widest)) {
    case VectorIsa::avx512: return best_gflops(fma_avx512, 2.0 * 16 * kChains);
    case VectorIsa::avx2: return best_gflops(fma_avx2, 2.0 * 8 * kChainsAvx2);
    case VectorIsa::sse: break;
  }
  return best_gflops(mul_add_sse, 2.0 * 4 * kChainsAvx2);
}

bool cpu_has_amx_bf16() {
  // Linux hands out the tiles' 8 KiB of state only to a process that asks for it.
  constexpr int kRequestPermission = 0x1023;  // ARCH_REQ_XCOMP_PERM
  constexpr int kTileData = 18;               // XFEATURE_XTILEDATA
  // CPUID leaf 7 asked directly: older compilers' __builtin_cpu_supports knows no "amx-bf16".
  constexpr unsigned kExtendedFeatures = 7;
  constexpr unsigned kAmxBf16Bit = 1U << 22;  // EDX
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_count(kExtendedFeatures, 0, &eax, &ebx, &ecx, &edx) == 0) return false;
  return (edx & kAmxBf16Bit) != 0 && syscall(SYS_arch_prctl, kRequestPermission, kTileData) == 0;
}

double measure_bf16_peak_gflops() {
  if (!cpu_has_native_bf16()) return 0.0;
  // vdpbf16ps: 16 lanes, each two bf16 products added into a float: 4 FLOPs per lane.
  const double vector = best_gflops(dot_bf16, 4.0 * 16 * kChains);
  return cpu_has_amx_bf16() ? std::max(vector, best_gflops(dot_tiles, 4 * kTileFlops)) : vector;
}

}  // namespace tp_mlp
