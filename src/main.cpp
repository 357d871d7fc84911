// tp_mlp: Megatron-style tensor parallelism for a transformer MLP block, Y = GeLU(X·W1)·W2.
// Reads like the reference script's worker(): parse, split groups, build shards, verify,
// analyse communication, benchmark, report.
#include <cstdio>
#include <exception>
#include <new>
#include <vector>

#include <mpi.h>

#include "tp_mlp/analysis.hpp"
#include "tp_mlp/bench.hpp"
#include "tp_mlp/comm.hpp"
#include "tp_mlp/config.hpp"
#include "tp_mlp/gemm.hpp"
#include "tp_mlp/init.hpp"
#include "tp_mlp/machine.hpp"
#include "tp_mlp/mlp.hpp"
#include "tp_mlp/report.hpp"
#include "tp_mlp/tensors.hpp"
#include "tp_mlp/verify.hpp"

using namespace tp_mlp;

namespace {

constexpr int kExitVerificationFailed = 1;
constexpr int kExitBadInput = 2;

int run(const World& world, int argc, char** argv) {
  // Every rank parses and validates the same input and so reaches the same verdict; the
  // lowest rank that objects says why, once, and all ranks leave together.
  const ParsedArgs args = parse_args(argc, argv);
  if (!args.config) {
    if (world.is_root()) std::fputs(args.text.c_str(), args.text_is_error ? stderr : stdout);
    return args.exit_code;
  }
  const Config cfg = *args.config;
  std::string error = validate(cfg, {world.size(), world.ranks_on_this_node(), available_memory_bytes()});
  if (error.empty() && world.is_root()) error = check_output_paths(cfg);
  const int objector = world.lowest_rank_where(!error.empty());
  if (objector >= 0) {
    if (world.rank() == objector) std::fprintf(stderr, "tp_mlp: error: %s\n", error.c_str());
    return kExitBadInput;
  }

  TpComm tp(world, cfg.tp_size);
  Report report(world.is_root());
  report.banner(cfg, {world.size(), world.size() / cfg.tp_size, gemm_backend()});

  // The model: every rank builds only its own shards, from the same master weights.
  Matrix x(cfg.tokens(), cfg.hidden_size);  // [tokens, H], the same on every rank
  fill_block(x, master_input(cfg), cfg.seed, 0, 0);
  // Serial is the one-rank baseline: only world rank 0 builds and runs it.
  auto on_every_rank = [](Scheme s) { return s != Scheme::serial; };
  std::vector<std::unique_ptr<MlpScheme>> mlps;
  std::vector<SchemeResult> results;
  for (Scheme s : cfg.schemes()) {
    mlps.push_back(on_every_rank(s) || world.is_root() ? make_scheme(s, cfg, tp) : nullptr);
    SchemeResult& result = results.emplace_back();
    result.scheme = s;
    result.weight_bytes = mlps.back() ? mlps.back()->weight_bytes() : 0;
    result.flops_per_rank = forward_flops_per_rank(s, cfg);
    result.formula = comm_formula(s, cfg);
  }

  // 1. Correctness, and 2. what one forward pass communicates, counted as it happens.
  const ReferenceRows reference = reference_forward(cfg, x, world.rank(), world.size());
  for (std::size_t i = 0; i < mlps.size(); ++i) {
    tp.reset_stats();
    Matrix y = mlps[i] ? mlps[i]->forward(x) : Matrix(cfg.tokens(), cfg.hidden_size);
    results[i].counted = tp.stats();
    if (!on_every_rank(results[i].scheme)) world.broadcast_from_root(y.data(), y.size());
    results[i].verification = compare(y, reference, cfg, world);
    if (i == 0 && world.is_root() && !cfg.tensors_dir.empty()) save_tensors(cfg, x, y);
  }
  report.verification(cfg, results);
  report.communication(cfg, results);

  // 3. Benchmark, each scheme next to bare all-reduces of its own message sizes.
  for (std::size_t i = 0; i < mlps.size(); ++i) {
    results[i].timing = time_forward(mlps[i].get(), on_every_rank(results[i].scheme), x, tp,
                                     world, cfg.warmup, cfg.iterations);
    results[i].floor = time_allreduces(results[i].formula.allreduce_elements, tp, world,
                                       cfg.warmup, cfg.iterations);
  }
  report.benchmark(cfg, results);

  // 4. Scaling: the formulas next to what was allocated and used.
  report.scaling(cfg, results, world.max(peak_rss_bytes()));
  report.write_json(cfg.json_path);

  for (const SchemeResult& r : results)
    if (!r.verification.passed) return kExitVerificationFailed;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int code = 0;
  {
    const World world;
    // An exception is seen by one rank only: abort the job, naming the rank, rather than
    // return and leave the others waiting in a collective forever.
    try {
      code = run(world, argc, argv);
    } catch (const std::bad_alloc&) {
      world.abort("out of memory while allocating its tensors");
    } catch (const std::exception& e) {
      world.abort(e.what());
    }
  }
  MPI_Finalize();
  return code;
}
