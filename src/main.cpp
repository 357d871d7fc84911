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

// What one rank feeds a scheme: all tokens, or under sequence parallelism its block of them.
struct Inputs {
  Matrix x, dy;        // [tokens, H], the same on every rank; dy empty without --backward
  Matrix x_sp, dy_sp;  // [tokens/T, H], this rank's block, for megatron-sp
  long sp_first = 0;   // first token of the block

  Inputs(const Config& cfg, const TpComm& tp)
      : x(cfg.tokens(), cfg.hidden_size), dy(cfg.backward ? cfg.tokens() : 0, cfg.hidden_size) {
    fill_block(x, master_input(cfg), cfg.seed, 0, 0);
    fill_block(dy, master_grad_output(cfg), cfg.seed, 0, 0);
    if (!cfg.sequence_parallel) return;
    const long rows = cfg.tokens() / tp.size();
    sp_first = tp.rank() * rows;
    x_sp = x.middleRows(sp_first, rows);
    if (cfg.backward) dy_sp = dy.middleRows(sp_first, rows);
  }
  const Matrix& x_for(Scheme s) const { return s == Scheme::megatron_sp ? x_sp : x; }
  const Matrix& dy_for(Scheme s) const { return s == Scheme::megatron_sp ? dy_sp : dy; }
};

// Serial is the one-rank baseline: only world rank 0 builds and runs it.
bool on_every_rank(Scheme s) { return s != Scheme::serial; }

SchemeResult describe(Scheme s, const MlpScheme* mlp, const Config& cfg) {
  SchemeResult r;
  r.scheme = s;
  r.weight_bytes = mlp ? mlp->weight_bytes() : 0;
  r.boundary_bytes = boundary_activation_bytes(s, cfg);
  r.has_backward = cfg.backward && s != Scheme::naive;
  r.forward = {comm_formula(s, cfg, Direction::forward), {}, flops_per_rank(s, cfg, Direction::forward)};
  if (r.has_backward)
    r.backward = {comm_formula(s, cfg, Direction::backward), {}, flops_per_rank(s, cfg, Direction::backward)};
  return r;
}

// The token rows this rank checks against the reference: with sequence parallelism the
// block its megatron-sp holds (the other schemes hold every row); otherwise its share of
// the world's, so that the reference's cost is spread.
ReferenceRows reference_for(const Config& cfg, const Inputs& in, const World& world) {
  if (cfg.sequence_parallel) return reference_rows(cfg, in.x, in.dy, in.sp_first, in.x_sp.rows());
  const long first = cfg.tokens() * world.rank() / world.size();
  const long next = cfg.tokens() * (world.rank() + 1) / world.size();
  return reference_rows(cfg, in.x, in.dy, first, next - first);
}

// A scheme's output on every rank: serial's is broadcast from rank 0, so that every rank
// can check its share of the rows.
Matrix everywhere(const Matrix* mine, Scheme s, const Config& cfg, const World& world) {
  Matrix out = mine ? *mine : Matrix(cfg.tokens(), cfg.hidden_size);
  if (!on_every_rank(s)) world.broadcast_from_root(out.data(), out.size());
  return out;
}

// One forward (and backward) pass: counted, then checked against the reference.
void verify_and_count(MlpScheme* mlp, SchemeResult& r, const Inputs& in, const ReferenceRows& ref,
                      const Config& cfg, TpComm& tp, const World& world) {
  const long first = mlp ? mlp->first_token() : 0;
  tp.reset_stats();
  const Matrix y = everywhere(mlp ? &mlp->forward(in.x_for(r.scheme)) : nullptr, r.scheme, cfg, world);
  r.forward.counted = tp.stats();
  r.output = verify_output(y, first, ref, cfg, world);
  const bool first_scheme = r.scheme == cfg.schemes().front();  // its Y is the one saved
  if (first_scheme && world.is_root() && !cfg.tensors_dir.empty()) save_tensors(cfg, in.x, y);
  if (!r.has_backward) return;
  tp.reset_stats();
  const Matrix dx = everywhere(mlp ? &mlp->backward(in.dy_for(r.scheme)) : nullptr, r.scheme, cfg, world);
  r.backward.counted = tp.stats();
  r.gradients = verify_gradients(dx, first, mlp ? mlp->gradients() : Gradients{}, ref, in.x, in.dy,
                                 cfg, world);
}

void benchmark(MlpScheme* mlp, SchemeResult& r, const Inputs& in, const Config& cfg, TpComm& tp,
               const World& world) {
  const Matrix no_gradient;
  const Matrix& x = in.x_for(r.scheme);
  r.timing = time_steps(mlp, on_every_rank(r.scheme), x, no_gradient, tp, world, cfg.warmup, cfg.iterations);
  r.floor = time_collectives(r.forward.formula.calls, tp, world, cfg.warmup, cfg.iterations);
  if (!r.has_backward) return;
  r.train_timing = time_steps(mlp, on_every_rank(r.scheme), x, in.dy_for(r.scheme), tp, world,
                              cfg.warmup, cfg.iterations);
  std::vector<CollectiveCall> both = r.forward.formula.calls;
  both.insert(both.end(), r.backward.formula.calls.begin(), r.backward.formula.calls.end());
  r.train_floor = time_collectives(both, tp, world, cfg.warmup, cfg.iterations);
}

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
  report.banner(cfg, {world.size(), world.size() / cfg.tp_size, gemm_backend(), measure_fma_peak(world)});
  const double baseline_rss = current_rss_bytes();  // MPI is up and has communicated

  // The model: every rank builds only its own shards, from the same master tensors.
  const Inputs in(cfg, tp);
  std::vector<std::unique_ptr<MlpScheme>> mlps;
  std::vector<SchemeResult> results;
  for (Scheme s : cfg.schemes()) {
    mlps.push_back(on_every_rank(s) || world.is_root() ? make_scheme(s, cfg, tp) : nullptr);
    results.push_back(describe(s, mlps.back().get(), cfg));
  }

  // 1. Correctness, and 2. what each pass communicates, counted as it happens.
  const ReferenceRows reference = reference_for(cfg, in, world);
  for (std::size_t i = 0; i < mlps.size(); ++i)
    verify_and_count(mlps[i].get(), results[i], in, reference, cfg, tp, world);
  report.verification(cfg, results);
  report.communication(cfg, results);

  // 3. Benchmark, each scheme next to the bare collectives of its own sizes.
  for (std::size_t i = 0; i < mlps.size(); ++i) benchmark(mlps[i].get(), results[i], in, cfg, tp, world);
  report.benchmark(cfg, results);

  // 4. Scaling: the formulas next to what was allocated and used.
  const MemoryEstimate estimate = estimate_memory(cfg);
  report.scaling(cfg, results, {baseline_rss, peak_rss_bytes(), estimate.per_rank() + estimate.serial});
  report.write_json(cfg.json_path);

  for (const SchemeResult& r : results)
    if (!r.passed()) return kExitVerificationFailed;
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
