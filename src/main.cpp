// tp_mlp: Megatron-style tensor parallelism for a transformer MLP block, Y = GeLU(X·W1)·W2.
// Reads like the reference script's worker(): parse, split groups, build shards, verify,
// analyse communication, benchmark, report.
#include <cstdio>
#include <exception>
#include <new>
#include <string>

#include "tp_mlp/cli.hpp"
#include "tp_mlp/comm.hpp"
#include "tp_mlp/comparison.hpp"
#include "tp_mlp/exit_codes.hpp"
#include "tp_mlp/gemm.hpp"
#include "tp_mlp/machine.hpp"
#include "tp_mlp/memory.hpp"
#include "tp_mlp/metrics.hpp"
#include "tp_mlp/output.hpp"
#include "tp_mlp/output_paths.hpp"
#include "tp_mlp/planned_gemm.hpp"
#include "tp_mlp/report_json.hpp"
#include "tp_mlp/report_text.hpp"
#include "tp_mlp/saved_tensors.hpp"
#include "tp_mlp/validate.hpp"

using namespace tp_mlp;

namespace {

// Every rank reaches the same verdict on the same input, or on its own share of the node's
// memory; the lowest rank that objects says why, once, and all ranks leave together.
bool agreed(const World& world, const std::string& error) {
  const int objector = world.lowest_rank_where(!error.empty());
  if (objector == world.rank()) std::fprintf(stderr, "tp_mlp: error: %s\n", error.c_str());
  return objector < 0;
}

std::string objection(const Config& cfg, const World& world) {
  std::string error = validate(cfg, world.size());
  if (error.empty() && world.is_root()) error = check_output_paths(cfg, saved_tensor_names(cfg));
  return error;
}

// What this rank's run will allocate: the run built on a planning workspace, which allocates
// no tensor, only adds them up.
WorkspacePlan plan_of(const Run& run) {
  Workspace planning;
  const Comparison comparison(planning, run);
  return planning.plan();
}

int run(const World& world, int argc, char** argv) {
  // Started by another MPI's launcher, each process is a world of its own and would run the
  // whole job alone: say so once, and let every one of them stop.
  if (const std::string why = world.launcher_mismatch(); !why.empty()) {
    if (world.launchers_first()) std::fprintf(stderr, "tp_mlp: error: %s\n", why.c_str());
    return kExitBadInput;
  }
  const ParsedArgs args = parse_args(argc, argv);
  if (!args.config) {
    if (world.is_root()) std::fputs(args.text.c_str(), args.text_is_error ? stderr : stdout);
    return args.exit_code;
  }
  const Config& cfg = *args.config;
  if (!agreed(world, objection(cfg, world))) return kExitBadInput;
  world.set_timeout(cfg.timeout);

  TpComm tp(world, cfg.tp_size);
  const Run run{cfg, world, tp};
  // The plan, checked against the node's memory before anything is allocated.
  const WorkspacePlan plan = plan_of(run);
  const double rank_bytes = double(plan.total());
  const std::string no_room = memory_problem(rank_bytes, world.node_sum(rank_bytes),
                                             world.ranks_on_this_node(), available_memory_bytes());
  if (!agreed(world, no_room)) return kExitBadInput;

  const Peaks peaks = measure_peaks(world);
  const Launch launch{world.size(),
                      world.size() / cfg.tp_size,
                      gemm_backend(),
                      bf16_gemm_implementation(),
                      peaks.fp32,
                      vector_isa_name(gemm_vector_isa()),
                      peaks.bf16,
                      cpu_has_amx_bf16(),
                      world.ranks_on_this_node(),
                      world.cores_on_this_node(),
                      world.oversubscribed()};
  const TextReport text(world.is_root());
  text.banner(cfg, launch);
  const double baseline_rss = current_rss_bytes();  // MPI is up and has communicated

  // The model: every rank builds only its own shards, from the same master tensors, in one
  // allocation of what the plan said.
  Workspace workspace(plan);
  Comparison comparison(workspace, run);
  Metrics metrics;

  // 1. Correctness, and 2. what each pass communicates, counted as it happens.
  comparison.verify_and_count();
  const RunPlan& ran = comparison.plan();
  metrics.verification = verification_metrics(comparison.results());
  metrics.communication = communication_metrics(cfg, comparison.results());
  text.verification(cfg, metrics.verification);
  text.communication(cfg, metrics.communication);
  if (!cfg.tensors_dir.empty()) save_tensors(run, comparison.saved_pass());

  // 3. Benchmark, each scheme next to the bare collectives of its own sizes.
  comparison.benchmark();
  metrics.benchmark = benchmark_metrics(cfg, comparison.results(), launch, comparison.overlap());
  text.benchmark(cfg, metrics.benchmark);

  // 4. Scaling: the formulas next to what was allocated and used.
  const MemoryUse memory{baseline_rss, peak_rss_bytes(), rank_bytes};
  metrics.scaling = scaling_metrics(cfg, comparison.results(), memory);
  text.scaling(metrics.scaling);
  if (world.is_root() && !cfg.json_path.empty())
    write_json(cfg.json_path, report_json(cfg, ran, launch, metrics));

  // No rank enters MPI_Finalize, whose wait for the others is watched too, while another is
  // still working: one stopped until then is caught there, not after its last exchange.
  world.barrier();
  return metrics.verification.passed ? kExitSuccess : kExitVerificationFailed;
}

}  // namespace

int main(int argc, char** argv) {
  guard_standard_streams();  // before MPI can take a closed stdout's number for a file of its own
  const MpiSession mpi(&argc, &argv);
  finish_commits_on_termination();  // a SIGTERM finds a set of outputs whole or absent
  const World world;
  gemm_use_one_thread();
  // An exception is seen by one rank only: abort the job, naming the rank, rather than
  // return and leave the others waiting in a collective forever.
  try {
    return run(world, argc, argv);
  } catch (const std::bad_alloc&) {
    world.abort("out of memory while allocating its tensors");
  } catch (const std::exception& e) {
    world.abort(e.what());
  }
}
