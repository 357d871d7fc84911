// report: text sections modelled on the reference script's, and the JSON document.
#include "tp_mlp/report.hpp"

#include <cmath>
#include <cstdio>
#include <string>

#include "tp_mlp/npy.hpp"

namespace tp_mlp {

bool SchemeResult::passed() const {
  bool ok = output.passed;
  for (const auto& g : gradients) ok = ok && g.passed;
  return ok;
}

namespace {

constexpr int kRule = 60;  // the script's section width

void section(const char* title) {
  const std::string rule(kRule, '=');
  std::printf("\n%s\n %s\n%s\n", rule.c_str(), title, rule.c_str());
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

const SchemeResult* find(const std::vector<SchemeResult>& results, Scheme scheme) {
  for (const auto& r : results)
    if (r.scheme == scheme) return &r;
  return nullptr;
}

bool any_backward(const std::vector<SchemeResult>& results) {
  for (const auto& r : results)
    if (r.has_backward) return true;
  return false;
}

bool all_passed(const std::vector<SchemeResult>& results) {
  for (const auto& r : results)
    if (!r.passed()) return false;
  return true;
}

// "1 all-gather + 1 reduce-scatter", as counted.
std::string collectives_text(const CommStats& s) {
  std::string text;
  auto add = [&](long calls, const char* name) {
    if (!calls) return;
    text += (text.empty() ? "" : " + ") + std::to_string(calls) + " " + name;
  };
  add(s.all_reduce.calls, "all-reduce");
  add(s.all_gather.calls, "all-gather");
  add(s.reduce_scatter.calls, "reduce-scatter");
  return text.empty() ? "none" : text;
}

long counted_bytes(const CommStats& s) {
  return s.all_reduce.bytes + s.all_gather.bytes + s.reduce_scatter.bytes;
}

// The communication layer saw exactly the collectives, kinds and sizes the formula predicts.
bool agrees(const PassResult& p) {
  const CommStats& s = p.counted;
  return s.all_reduce.calls == p.formula.count(Collective::all_reduce) &&
         s.all_gather.calls == p.formula.count(Collective::all_gather) &&
         s.reduce_scatter.calls == p.formula.count(Collective::reduce_scatter) &&
         s.all_reduce.bytes == p.formula.bytes(Collective::all_reduce) &&
         s.all_gather.bytes == p.formula.bytes(Collective::all_gather) &&
         s.reduce_scatter.bytes == p.formula.bytes(Collective::reduce_scatter);
}

nlohmann::json summary_json(const Summary& s) {
  return {{"mean", s.mean}, {"median", s.median}, {"min", s.min}, {"max", s.max}};
}

nlohmann::json tally_json(const CollectiveTally& t) { return {{"calls", t.calls}, {"bytes", t.bytes}}; }

nlohmann::json pass_json(const PassResult& p, int tp_size) {
  return {{"counted",
           {{"all_reduce", tally_json(p.counted.all_reduce)},
            {"all_gather", tally_json(p.counted.all_gather)},
            {"reduce_scatter", tally_json(p.counted.reduce_scatter)},
            {"calls", p.counted.calls()},
            {"bytes", counted_bytes(p.counted)},
            {"ring_bytes_per_rank", ring_bytes_per_rank(p.counted, tp_size)}}},
          {"formula",
           {{"calls", p.formula.count()},
            {"bytes", p.formula.bytes()},
            {"ring_bytes_per_rank", p.formula.ring_bytes_per_rank(tp_size)}}},
          {"matches_formula", agrees(p)},
          {"flops_per_rank", p.flops_per_rank}};
}

nlohmann::json verification_json(const Verification& v) {
  return {{"tensor", v.tensor},          {"passed", v.passed},
          {"max_abs_diff", v.max_abs_diff}, {"max_rel_diff", v.max_rel_diff},
          {"tolerance", v.tolerance},     {"accumulated_terms", v.accumulated_terms}};
}

double gflops(double flops, double ms) { return ms > 0 ? flops / (ms * 1e6) : 0.0; }

int ranks_used(const SchemeResult& r, const Config& cfg) {
  return r.scheme == Scheme::serial ? 1 : cfg.tp_size;
}

// The fastest a step can be: this rank's FLOPs at the core's FMA peak, plus the bare
// collectives it needs.
double bound_ms(double flops, double peak_gflops, const Summary& floor) {
  return flops / (peak_gflops * 1e6) + floor.median;
}

void print_verification_row(const char* scheme, const Verification& v) {
  std::printf("  %-12s %-5s %13.2e %13.2e %11.2e  %s\n", scheme, v.tensor.c_str(), v.max_abs_diff,
              v.max_rel_diff, v.tolerance, yes_no(v.passed));
}

}  // namespace

void Report::banner(const Config& cfg, const Launch& launch) {
  peak_gflops_ = launch.peak_gflops;
  json_["config"] = {{"tp_size", cfg.tp_size},         {"world_size", launch.world_size},
                     {"tp_groups", launch.tp_groups},  {"hidden_size", cfg.hidden_size},
                     {"intermediate_size", cfg.intermediate_size()},
                     {"batch_size", cfg.batch_size},   {"seq_len", cfg.seq_len},
                     {"iterations", cfg.iterations},   {"warmup", cfg.warmup},
                     {"seed", cfg.seed},               {"scheme", cfg.scheme},
                     {"backward", cfg.backward},       {"bias", cfg.bias},
                     {"sequence_parallel", cfg.sequence_parallel},
                     {"gemm_backend", launch.gemm_backend}};
  json_["machine"] = {{"fma_peak_gflops_per_core", launch.peak_gflops}};
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
  std::printf("Model: Y = GeLU(X.W1%s).W2%s%s\n", cfg.bias ? " + b1" : "", cfg.bias ? " + b2" : "",
              cfg.backward ? ", forward and backward" : ", forward");
  std::printf("GEMM: %s, one thread per rank\n", launch.gemm_backend);
  std::printf("FMA peak of one core: %.1f GFLOP/s (measured)\n", launch.peak_gflops);
  std::fflush(stdout);
}

void Report::verification(const Config& cfg, const std::vector<SchemeResult>& results) {
  for (const auto& r : results) {
    auto& j = json_["schemes"][scheme_name(r.scheme)];
    j["verification"] = verification_json(r.output);
    j["verification"]["passed"] = r.passed();
    if (r.has_backward)
      for (const auto& g : r.gradients) j["backward"]["verification"][g.tensor] = verification_json(g);
  }
  const Verification& first = results.front().output;
  json_["verification"] = verification_json(first);
  json_["verification"]["passed"] = all_passed(results);
  json_["verification"]["scheme"] = scheme_name(results.front().scheme);
  if (!prints_) return;
  section("CORRECTNESS VERIFICATION");
  std::printf("\nReference: the same model unsharded, in float64, split over ranks by tokens\n");
  std::printf("Input shape: %s\nOutput shape: %s\n", shape_text(cfg).c_str(), shape_text(cfg).c_str());
  std::printf("Tolerance: max|diff| / max|reference| <= n*u, u = 2^-24, where n is the number\n"
              "of fp32 products accumulated into an element (for Y, n = H + 4H = %ld): the\n"
              "worst-case growth of rounding error in a sum of n terms.\n\n",
              first.accumulated_terms);
  std::printf("  %-12s %-5s %13s %13s %11s  %s\n", "scheme", "", "max abs diff", "max rel diff",
              "tolerance", "correct");
  for (const auto& r : results) print_verification_row(scheme_name(r.scheme), r.output);
  if (any_backward(results)) {
    std::printf("\n  Backward, given a fixed upstream gradient dY %s:\n", shape_text(cfg).c_str());
    for (const auto& r : results)
      for (const auto& g : r.gradients) print_verification_row(scheme_name(r.scheme), g);
  }
  std::printf("\nMax difference from reference: %.2e\n", first.max_abs_diff);
  std::printf("Correct: %s\n", yes_no(all_passed(results)));
  std::fflush(stdout);
}

void Report::communication(const Config& cfg, const std::vector<SchemeResult>& results) {
  const int T = cfg.tp_size;
  for (const auto& r : results) {
    auto& j = json_["schemes"][scheme_name(r.scheme)];
    j["allreduce_calls_per_forward"] = r.forward.counted.all_reduce.calls;
    j["allreduce_bytes_per_forward"] = r.forward.counted.all_reduce.bytes;
    j["forward"] = pass_json(r.forward, T);
    j["boundary_activation_bytes"] = r.boundary_bytes;
    if (r.has_backward) j["backward"].update(pass_json(r.backward, T));
  }
  const SchemeResult& lead = results.front();
  const CommStats& counted = lead.forward.counted;
  const long calls = counted.calls();
  const long bytes_per_call = calls ? counted_bytes(counted) / calls : 0;
  const double ring = lead.forward.formula.ring_bytes_per_rank(T);
  json_["communication"] = {{"scheme", scheme_name(lead.scheme)},
                            {"allreduce_calls_per_forward", counted.all_reduce.calls},
                            {"collective_calls_per_forward", calls},
                            {"bytes_per_allreduce", bytes_per_call},
                            {"elements_per_allreduce", bytes_per_call / long(sizeof(float))},
                            {"ring_bytes_per_rank", ring},
                            {"ring_bytes_total", ring * T}};
  if (!prints_) return;
  section("COMMUNICATION ANALYSIS");
  std::printf("\nConfiguration:\n  Hidden size: %d\n  Batch size: %d\n  Sequence length: %d\n"
              "  TP degree: %d\n",
              cfg.hidden_size, cfg.batch_size, cfg.seq_len, T);
  std::printf("\nPer forward pass (%s, counted by the communication layer):\n", scheme_name(lead.scheme));
  std::printf("  All-reduce calls: %ld\n", counted.all_reduce.calls);
  std::printf("  Elements per all-reduce: %s\n", grouped(bytes_per_call / long(sizeof(float))).c_str());
  std::printf("  Bytes per all-reduce: %s\n", bytes_text(double(bytes_per_call)).c_str());
  std::printf("\nCommunication volume (ring algorithm, 2 x bytes x (T-1)/T):\n");
  std::printf("  Per rank: %s\n  Total across all ranks: %s\n", bytes_text(ring).c_str(),
              bytes_text(ring * T).c_str());

  std::printf("\nEvery scheme, one pass each, as counted (bytes: the whole tensors reduced or\n"
              "assembled; ring bytes: what each rank sends, all-reduce 2B(T-1)/T, all-gather and\n"
              "reduce-scatter B(T-1)/T):\n\n");
  std::printf("  %-12s %-9s %-32s %11s %13s  %s\n", "scheme", "pass", "collectives", "bytes",
              "ring B/rank", "= formula");
  auto row = [&](const SchemeResult& r, const char* pass, const PassResult& p) {
    std::printf("  %-12s %-9s %-32s %11s %13s  %s\n", scheme_name(r.scheme), pass,
                collectives_text(p.counted).c_str(), bytes_text(double(counted_bytes(p.counted))).c_str(),
                bytes_text(ring_bytes_per_rank(p.counted, T)).c_str(), agrees(p) ? "yes" : "NO");
  };
  for (const auto& r : results) {
    row(r, "forward", r.forward);
    if (r.has_backward) row(r, "backward", r.backward);
  }
  const SchemeResult* megatron = find(results, Scheme::megatron);
  const SchemeResult* naive = find(results, Scheme::naive);
  const SchemeResult* sp = find(results, Scheme::megatron_sp);
  if (megatron && naive && counted_bytes(megatron->forward.counted) > 0)
    std::printf("\nNaive moves %.1fx Megatron's bytes: it must sum the [tokens, 4H] pre-activation\n"
                "before GeLU, because GeLU of a partial sum is not the sum of GeLUs.\n",
                double(counted_bytes(naive->forward.counted)) /
                    double(counted_bytes(megatron->forward.counted)));
  if (megatron && sp)
    std::printf("\nSequence parallelism replaces each all-reduce by an all-gather and a\n"
                "reduce-scatter: %s vs %s sent per rank per forward, while X and Y (and dY, dX)\n"
                "shrink from %s to %s per rank.\n",
                bytes_text(ring_bytes_per_rank(sp->forward.counted, T)).c_str(),
                bytes_text(ring_bytes_per_rank(megatron->forward.counted, T)).c_str(),
                bytes_text(megatron->boundary_bytes).c_str(), bytes_text(sp->boundary_bytes).c_str());
  std::printf("\nThe price of tensor parallelism is this communication; serial needs none,\n"
              "but holds all 8H^2 weights on one rank.\n");
  std::fflush(stdout);
}

void Report::benchmark(const Config& cfg, const std::vector<SchemeResult>& results) {
  const SchemeResult* serial = find(results, Scheme::serial);
  auto speedup = [&](const SchemeResult& r) {
    return serial && r.timing.total.median > 0 ? serial->timing.total.median / r.timing.total.median : 0.0;
  };
  for (const auto& r : results) {
    auto& j = json_["schemes"][scheme_name(r.scheme)];
    const double bound = bound_ms(r.forward.flops_per_rank, peak_gflops_, r.floor);
    j["forward_ms"] = summary_json(r.timing.total);
    j["compute_ms"] = summary_json(r.timing.compute);
    j["comm_ms"] = summary_json(r.timing.comm);
    j["floor_ms"] = summary_json(r.floor);
    j["gflops_per_rank"] = gflops(r.forward.flops_per_rank, r.timing.total.median);
    j["percent_of_peak"] = 100 * gflops(r.forward.flops_per_rank, r.timing.total.median) / peak_gflops_;
    j["bound_ms"] = bound;
    j["forward_over_bound"] = r.timing.total.median / bound;
    if (serial) {
      j["speedup_vs_serial"] = speedup(r);
      j["parallel_efficiency"] = speedup(r) / ranks_used(r, cfg);
    }
    if (r.has_backward) {
      const double flops = r.forward.flops_per_rank + r.backward.flops_per_rank;
      j["backward"]["step_ms"] = summary_json(r.train_timing.total);
      j["backward"]["compute_ms"] = summary_json(r.train_timing.compute);
      j["backward"]["comm_ms"] = summary_json(r.train_timing.comm);
      j["backward"]["floor_ms"] = summary_json(r.train_floor);
      j["backward"]["gflops_per_rank"] = gflops(flops, r.train_timing.total.median);
      j["backward"]["bound_ms"] = bound_ms(flops, peak_gflops_, r.train_floor);
    }
  }
  const SchemeResult& lead = results.front();
  json_["benchmark"] = {
      {"scheme", scheme_name(lead.scheme)},
      {"forward_ms", summary_json(lead.timing.total)},
      {"gflops", gflops(lead.forward.flops_per_rank * ranks_used(lead, cfg), lead.timing.total.median)},
      {"gflops_per_rank", gflops(lead.forward.flops_per_rank, lead.timing.total.median)}};
  if (const SchemeResult* megatron = find(results, Scheme::megatron))
    json_["floor"] = {{"bytes", megatron->forward.formula.bytes()},
                      {"allreduce_ms", summary_json(megatron->floor)}};
  if (const SchemeResult* m = find(results, Scheme::megatron); m && m->has_backward)
    json_["backward"] = json_["schemes"]["megatron"]["backward"];
  if (find(results, Scheme::megatron_sp)) json_["sequence_parallel"] = json_["schemes"]["megatron-sp"];
  if (!prints_) return;
  section("BENCHMARK");
  std::printf("\n%d warm-up + %d timed passes per scheme; each is timed on every rank and\n"
              "counts as the slowest rank's time. Serial runs alone on rank 0.\n",
              cfg.warmup, cfg.iterations);
  std::printf("\n  %-12s %10s %10s %10s %10s   (forward, ms)\n", "scheme", "mean", "median", "min", "max");
  for (const auto& r : results)
    std::printf("  %-12s %10.3f %10.3f %10.3f %10.3f\n", scheme_name(r.scheme), r.timing.total.mean,
                r.timing.total.median, r.timing.total.min, r.timing.total.max);
  std::printf("\n  %-12s %10s %10s %10s %10s   (median ms; floor = the bare\n", "scheme", "compute",
              "comm", "floor", "comm/floor");
  std::printf("  %-12s %10s %10s %10s %10s    collectives of the same sizes)\n", "", "", "", "", "");
  for (const auto& r : results) {
    char ratio[16] = "-";
    if (r.forward.counted.calls() > 0 && r.floor.median > 0)
      std::snprintf(ratio, sizeof ratio, "%.2f", r.timing.comm.median / r.floor.median);
    std::printf("  %-12s %10.3f %10.3f %10.3f %10s\n", scheme_name(r.scheme), r.timing.compute.median,
                r.timing.comm.median, r.floor.median, ratio);
  }
  std::printf("\n  %-12s %8s %7s %10s %8s %9s %9s\n", "scheme", "GFLOP/s", "% peak", "bound ms",
              "/bound", "speed-up", "effic.");
  for (const auto& r : results) {
    const double rate = gflops(r.forward.flops_per_rank, r.timing.total.median);
    const double bound = bound_ms(r.forward.flops_per_rank, peak_gflops_, r.floor);
    std::printf("  %-12s %8.1f %6.0f%% %10.3f %7.2fx", scheme_name(r.scheme), rate,
                100 * rate / peak_gflops_, bound, r.timing.total.median / bound);
    if (serial)
      std::printf(" %8.2fx %8.0f%%\n", speedup(r), 100 * speedup(r) / ranks_used(r, cfg));
    else
      std::printf(" %9s %9s\n", "-", "-");
  }
  std::printf("  (GFLOP/s per rank; bound = this rank's FLOPs at the FMA peak + the floor;\n"
              "   speed-up = serial time / scheme time, efficiency = speed-up / ranks%s)\n",
              serial ? "" : "; both need serial: --scheme all");
  if (any_backward(results)) {
    std::printf("\n  %-12s %10s %10s %10s %10s %8s %7s   (forward + backward,\n", "scheme", "median",
                "compute", "comm", "floor", "GFLOP/s", "% peak");
    std::printf("  %-12s %10s %10s %10s %10s %8s %7s    median ms)\n", "", "", "", "", "", "", "");
    for (const auto& r : results) {
      if (!r.has_backward) continue;
      const double rate =
          gflops(r.forward.flops_per_rank + r.backward.flops_per_rank, r.train_timing.total.median);
      std::printf("  %-12s %10.3f %10.3f %10.3f %10.3f %8.1f %6.0f%%\n", scheme_name(r.scheme),
                  r.train_timing.total.median, r.train_timing.compute.median,
                  r.train_timing.comm.median, r.train_floor.median, rate, 100 * rate / peak_gflops_);
    }
  }
  std::printf("\nTP MLP forward pass (%s, median): %.3f ms\n", scheme_name(lead.scheme),
              lead.timing.total.median);
  std::printf("Output shape: %s\n", shape_text(cfg).c_str());
  std::fflush(stdout);
}

void Report::scaling(const Config& cfg, const std::vector<SchemeResult>& results,
                     const MemoryUse& memory) {
  constexpr long kExampleHidden = 4096;  // the script's example: H = 4096, T = 8
  constexpr int kExampleTp = 8;
  const ParamFormula run = param_formula(cfg.hidden_size, cfg.tp_size);
  const ParamFormula example = param_formula(kExampleHidden, kExampleTp);
  const double f = sizeof(float);
  json_["memory"] = {{"params_total", run.total},
                     {"params_per_rank", run.per_rank},
                     {"weight_bytes_per_rank", results.front().weight_bytes},
                     {"weight_bytes_per_rank_formula", run.per_rank * f},
                     {"baseline_rss_bytes", memory.baseline_rss},
                     {"peak_rss_bytes", memory.peak_rss},
                     {"estimated_bytes", memory.estimate}};
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
  std::printf("\n  %-12s %16s %26s\n", "scheme", "weights/rank", "X, Y (dY, dX) per rank");
  for (const auto& r : results)
    std::printf("  %-12s %16s %26s\n", scheme_name(r.scheme), bytes_text(double(r.weight_bytes)).c_str(),
                bytes_text(r.boundary_bytes).c_str());
  std::printf("  (as allocated; serial's on rank 0 only)\n");
  show("Example", kExampleHidden, kExampleTp, example);
  std::printf("\nRank 0's resident memory: peak %s = baseline %s (MPI, libraries)\n"
              "  + %s, against an estimate of %s for its tensors (%.2fx)\n",
              bytes_text(memory.peak_rss).c_str(), bytes_text(memory.baseline_rss).c_str(),
              bytes_text(memory.peak_rss - memory.baseline_rss).c_str(),
              bytes_text(memory.estimate).c_str(),
              (memory.peak_rss - memory.baseline_rss) / memory.estimate);
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
