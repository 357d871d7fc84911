// report: text sections modelled on the reference script's, and the JSON document.
#include "tp_mlp/report.hpp"

#include <cmath>
#include <cstdio>
#include <string>

#include "tp_mlp/npy.hpp"

namespace tp_mlp {
namespace {

constexpr int kRule = 60;  // the script's section width

void section(const char* title) {
  std::printf("\n%s\n %s\n%s\n", std::string(kRule, '=').c_str(), title,
              std::string(kRule, '=').c_str());
}

std::string bytes_text(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  while (std::fabs(bytes) >= 1024.0 && unit < 4) {
    bytes /= 1024.0;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, unit ? "%.1f %s" : "%.0f %s", bytes, units[unit]);
  return text;
}

std::string grouped(long n) {  // 1234567 -> "1,234,567"
  std::string digits = std::to_string(n), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string shape_text(const Config& cfg) {
  return "[" + std::to_string(cfg.batch_size) + ", " + std::to_string(cfg.seq_len) + ", " +
         std::to_string(cfg.hidden_size) + "]";
}

const char* yes_no(bool b) { return b ? "True" : "False"; }

bool all_passed(const std::vector<SchemeResult>& results) {
  for (const auto& r : results)
    if (!r.verification.passed) return false;
  return true;
}

const SchemeResult* find(const std::vector<SchemeResult>& results, Scheme scheme) {
  for (const auto& r : results)
    if (r.scheme == scheme) return &r;
  return nullptr;
}

nlohmann::json summary_json(const Summary& s) {
  return {{"mean", s.mean}, {"median", s.median}, {"min", s.min}, {"max", s.max}};
}

double gflops(double flops, double ms) { return ms > 0 ? flops / (ms * 1e6) : 0.0; }

}  // namespace

void Report::banner(const Config& cfg, const Launch& launch) {
  json_["config"] = {{"tp_size", cfg.tp_size},         {"world_size", launch.world_size},
                     {"tp_groups", launch.tp_groups},  {"hidden_size", cfg.hidden_size},
                     {"intermediate_size", cfg.intermediate_size()},
                     {"batch_size", cfg.batch_size},   {"seq_len", cfg.seq_len},
                     {"iterations", cfg.iterations},   {"warmup", cfg.warmup},
                     {"seed", cfg.seed},               {"scheme", cfg.scheme},
                     {"gemm_backend", launch.gemm_backend}};
  if (!prints_) return;
  const std::string title = "TENSOR-PARALLEL MLP BLOCK";
  const int inner = kRule - 2, left = (inner - int(title.size())) / 2;
  std::string bar;
  for (int i = 0; i < inner; ++i) bar += "═";
  std::printf("╔%s╗\n║%*s%s%*s║\n╚%s╝\n", bar.c_str(), left, "", title.c_str(),
              inner - left - int(title.size()), "", bar.c_str());
  std::printf("\nTP degree: %d (%d MPI rank%s: %d group%s of %d)\n", cfg.tp_size,
              launch.world_size, launch.world_size == 1 ? "" : "s", launch.tp_groups,
              launch.tp_groups == 1 ? "" : "s", cfg.tp_size);
  std::printf("Hidden size: %d\nIntermediate size: %ld\n", cfg.hidden_size, cfg.intermediate_size());
  std::printf("Tokens: batch %d x seq %d = %ld\n", cfg.batch_size, cfg.seq_len, cfg.tokens());
  std::printf("GEMM: %s, one thread per rank\n", launch.gemm_backend);
  std::fflush(stdout);
}

void Report::verification(const Config& cfg, const std::vector<SchemeResult>& results) {
  nlohmann::json schemes = nlohmann::json::object();
  for (const auto& r : results)
    schemes[scheme_name(r.scheme)]["verification"] = {
        {"passed", r.verification.passed},
        {"max_abs_diff", r.verification.max_abs_diff},
        {"max_rel_diff", r.verification.max_rel_diff}};
  json_["schemes"] = schemes;
  const Verification& first = results.front().verification;
  json_["verification"] = {{"passed", all_passed(results)},
                           {"scheme", scheme_name(results.front().scheme)},
                           {"max_abs_diff", first.max_abs_diff},
                           {"max_rel_diff", first.max_rel_diff},
                           {"tolerance", first.tolerance},
                           {"accumulated_terms", first.accumulated_terms}};
  if (!prints_) return;
  section("CORRECTNESS VERIFICATION");
  std::printf("\nReference: the same model unsharded, in float64, split over ranks by tokens\n");
  std::printf("Input shape: %s\nOutput shape: %s\n", shape_text(cfg).c_str(), shape_text(cfg).c_str());
  std::printf("Tolerance: max|Y - Y_ref| / max|Y_ref| <= %.2e\n", first.tolerance);
  std::printf("  (fp32 rounding grows at worst like n*u: n = H + 4H = %ld accumulated terms,\n"
              "   u = 2^-24)\n\n", first.accumulated_terms);
  std::printf("  %-10s %14s %14s  %s\n", "scheme", "max abs diff", "max rel diff", "correct");
  for (const auto& r : results)
    std::printf("  %-10s %14.2e %14.2e  %s\n", scheme_name(r.scheme), r.verification.max_abs_diff,
                r.verification.max_rel_diff, yes_no(r.verification.passed));
  std::printf("\nMax difference from reference: %.2e\n", first.max_abs_diff);
  std::printf("Correct: %s\n", yes_no(all_passed(results)));
  std::fflush(stdout);
}

void Report::communication(const Config& cfg, const std::vector<SchemeResult>& results) {
  for (const auto& r : results) {
    auto& j = json_["schemes"][scheme_name(r.scheme)];
    j["allreduce_calls_per_forward"] = r.counted.all_reduce.calls;
    j["allreduce_bytes_per_forward"] = r.counted.all_reduce.bytes;
    j["formula"] = {{"allreduce_calls_per_forward", r.formula.calls()},
                    {"allreduce_bytes_per_forward", r.formula.bytes()},
                    {"ring_bytes_per_rank", r.formula.ring_bytes_per_rank(cfg.tp_size)}};
  }
  const SchemeResult& lead = results.front();
  const long calls = lead.counted.all_reduce.calls;
  const long bytes_per_call = calls ? lead.counted.all_reduce.bytes / calls : 0;
  const double ring = lead.formula.ring_bytes_per_rank(cfg.tp_size);
  json_["communication"] = {{"scheme", scheme_name(lead.scheme)},
                            {"allreduce_calls_per_forward", calls},
                            {"bytes_per_allreduce", bytes_per_call},
                            {"elements_per_allreduce", bytes_per_call / long(sizeof(float))},
                            {"ring_bytes_per_rank", ring},
                            {"ring_bytes_total", ring * cfg.tp_size}};
  if (!prints_) return;
  section("COMMUNICATION ANALYSIS");
  std::printf("\nConfiguration:\n  Hidden size: %d\n  Batch size: %d\n  Sequence length: %d\n"
              "  TP degree: %d\n",
              cfg.hidden_size, cfg.batch_size, cfg.seq_len, cfg.tp_size);
  std::printf("\nPer forward pass (%s, counted by the communication layer):\n",
              scheme_name(lead.scheme));
  std::printf("  All-reduce calls: %ld\n", calls);
  std::printf("  Elements per all-reduce: %s\n", grouped(bytes_per_call / long(sizeof(float))).c_str());
  std::printf("  Bytes per all-reduce: %s\n", bytes_text(double(bytes_per_call)).c_str());
  std::printf("\nCommunication volume (ring algorithm, 2 x bytes x (T-1)/T):\n");
  std::printf("  Per rank: %s\n  Total across all ranks: %s\n", bytes_text(ring).c_str(),
              bytes_text(ring * cfg.tp_size).c_str());
  std::printf("\n  %-10s %21s %25s %14s\n", "", "all-reduces/forward", "bytes/forward",
              "ring bytes");
  std::printf("  %-10s %10s %10s %12s %12s %14s\n", "scheme", "formula", "counted", "formula",
              "counted", "per rank");
  for (const auto& r : results)
    std::printf("  %-10s %10ld %10ld %12s %12s %14s\n", scheme_name(r.scheme), r.formula.calls(),
                r.counted.all_reduce.calls, bytes_text(double(r.formula.bytes())).c_str(),
                bytes_text(double(r.counted.all_reduce.bytes)).c_str(),
                bytes_text(r.formula.ring_bytes_per_rank(cfg.tp_size)).c_str());
  const SchemeResult* megatron = find(results, Scheme::megatron);
  const SchemeResult* naive = find(results, Scheme::naive);
  if (megatron && naive && megatron->counted.all_reduce.bytes > 0)
    std::printf("\nNaive moves %.1fx Megatron's bytes: it must sum the [tokens, 4H] pre-activation\n"
                "before GeLU, because GeLU of a partial sum is not the sum of GeLUs.\n",
                double(naive->counted.all_reduce.bytes) / double(megatron->counted.all_reduce.bytes));
  std::printf("\nThe price of tensor parallelism is this communication; serial needs none,\n"
              "but holds all 8H^2 weights on one rank.\n");
  std::fflush(stdout);
}

void Report::benchmark(const Config& cfg, const std::vector<SchemeResult>& results) {
  const SchemeResult* serial = find(results, Scheme::serial);
  auto speedup = [&](const SchemeResult& r) {
    return serial && r.timing.forward.median > 0 ? serial->timing.forward.median / r.timing.forward.median
                                                 : 0.0;
  };
  for (const auto& r : results) {
    auto& j = json_["schemes"][scheme_name(r.scheme)];
    j["forward_ms"] = summary_json(r.timing.forward);
    j["compute_ms"] = summary_json(r.timing.compute);
    j["comm_ms"] = summary_json(r.timing.comm);
    j["floor_ms"] = summary_json(r.floor);
    j["gflops_per_rank"] = gflops(r.flops_per_rank, r.timing.forward.median);
    if (serial) {
      j["speedup_vs_serial"] = speedup(r);
      j["parallel_efficiency"] = speedup(r) / (r.scheme == Scheme::serial ? 1 : cfg.tp_size);
    }
  }
  const SchemeResult& lead = results.front();
  const double model_flops = lead.flops_per_rank * (lead.scheme == Scheme::serial ? 1 : cfg.tp_size);
  json_["benchmark"] = {{"scheme", scheme_name(lead.scheme)},
                        {"forward_ms", summary_json(lead.timing.forward)},
                        {"gflops", gflops(model_flops, lead.timing.forward.median)},
                        {"gflops_per_rank", gflops(lead.flops_per_rank, lead.timing.forward.median)}};
  if (const SchemeResult* megatron = find(results, Scheme::megatron))
    json_["floor"] = {{"bytes", megatron->formula.bytes()},
                      {"allreduce_ms", summary_json(megatron->floor)}};
  if (!prints_) return;
  section("BENCHMARK");
  std::printf("\n%d warm-up + %d timed forward passes per scheme; each pass is timed on every\n"
              "rank and counts as the slowest rank's time.\n",
              cfg.warmup, cfg.iterations);
  std::printf("\n  %-10s %10s %10s %10s %10s   (forward, ms)\n", "scheme", "mean", "median", "min",
              "max");
  for (const auto& r : results)
    std::printf("  %-10s %10.3f %10.3f %10.3f %10.3f\n", scheme_name(r.scheme), r.timing.forward.mean,
                r.timing.forward.median, r.timing.forward.min, r.timing.forward.max);
  std::printf("\n  %-10s %10s %10s %10s %10s   (median ms; floor = bare\n", "scheme", "compute",
              "comm", "floor", "comm/floor");
  std::printf("  %-10s %10s %10s %10s %10s    all-reduces of the same bytes)\n", "", "", "", "", "");
  for (const auto& r : results) {
    const bool talks = r.formula.calls() > 0;
    char ratio[16] = "-";
    if (talks && r.floor.median > 0) std::snprintf(ratio, sizeof ratio, "%.2f", r.timing.comm.median / r.floor.median);
    std::printf("  %-10s %10.3f %10.3f %10.3f %10s\n", scheme_name(r.scheme), r.timing.compute.median,
                r.timing.comm.median, r.floor.median, ratio);
  }
  std::printf("\n  %-10s %14s %12s %12s\n", "scheme", "GFLOP/s/rank", "speed-up", "efficiency");
  for (const auto& r : results) {
    const double s = speedup(r);
    const int ranks = r.scheme == Scheme::serial ? 1 : cfg.tp_size;
    if (serial)
      std::printf("  %-10s %14.1f %11.2fx %11.0f%%\n", scheme_name(r.scheme),
                  gflops(r.flops_per_rank, r.timing.forward.median), s, 100.0 * s / ranks);
    else
      std::printf("  %-10s %14.1f %12s %12s\n", scheme_name(r.scheme),
                  gflops(r.flops_per_rank, r.timing.forward.median), "-", "-");
  }
  std::printf(serial ? "  (speed-up = serial time / scheme time; efficiency = speed-up / ranks used)\n"
                     : "  (speed-up and efficiency need the serial baseline: --scheme all)\n");
  std::printf("\nTP MLP forward pass (%s, median): %.3f ms\n", scheme_name(lead.scheme),
              lead.timing.forward.median);
  std::printf("Output shape: %s\n", shape_text(cfg).c_str());
  std::fflush(stdout);
}

void Report::scaling(const Config& cfg, const std::vector<SchemeResult>& results,
                     double peak_rss_bytes) {
  constexpr long kExampleHidden = 4096;  // the script's example: H = 4096, T = 8
  constexpr int kExampleTp = 8;
  const ParamFormula run = param_formula(cfg.hidden_size, cfg.tp_size);
  const ParamFormula example = param_formula(kExampleHidden, kExampleTp);
  const SchemeResult& lead = results.front();
  const double f = sizeof(float);
  json_["memory"] = {{"params_total", run.total},
                     {"params_per_rank", run.per_rank},
                     {"weight_bytes_per_rank", lead.weight_bytes},
                     {"weight_bytes_per_rank_formula", run.per_rank * f},
                     {"peak_rss_bytes", peak_rss_bytes}};
  if (!prints_) return;
  section("SCALING ANALYSIS");
  std::printf("\nMemory scaling with Tensor Parallelism (fp32):\n\n"
              "For an MLP with hidden_size H and intermediate_size 4H:\n"
              "  Non-parallel: W1 H x 4H + W2 4H x H = 8H^2 parameters\n"
              "  With TP degree T: 8H^2/T parameters per rank\n");
  auto show = [&](const char* title, long H, int T, const ParamFormula& p) {
    std::printf("\n%s: H=%ld, T=%d\n", title, H, T);
    std::printf("  Non-parallel: %s parameters (%s)\n", grouped(long(p.total)).c_str(),
                bytes_text(p.total * f).c_str());
    std::printf("  With %d-way TP: %s parameters (%s per rank)\n", T, grouped(long(p.per_rank)).c_str(),
                bytes_text(p.per_rank * f).c_str());
  };
  show("This run", cfg.hidden_size, cfg.tp_size, run);
  for (const auto& r : results)
    std::printf("  Allocated by one rank for %s: %s of weights\n", scheme_name(r.scheme),
                bytes_text(double(r.weight_bytes)).c_str());
  show("Example", kExampleHidden, kExampleTp, example);
  std::printf("\nPeak resident memory of the largest rank: %s\n", bytes_text(peak_rss_bytes).c_str());
  std::fflush(stdout);
}

void Report::write_json(const std::string& path) const {
  if (!prints_ || path.empty()) return;
  const std::string text = json_.dump(2) + "\n";
  AtomicFile file(path);
  file.write(text.data(), text.size());
  file.commit();
}

}  // namespace tp_mlp
