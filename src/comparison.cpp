// comparison: the stages every scheme goes through (see comparison.hpp).
#include "tp_mlp/comparison.hpp"

#include <algorithm>
#include <chrono>

#include "tp_mlp/analysis.hpp"
#include "tp_mlp/bench.hpp"
#include "tp_mlp/faults.hpp"
#include "tp_mlp/init.hpp"

namespace tp_mlp {
namespace {

// The token rows this rank checks against the reference: with sequence parallelism the block
// its megatron-sp holds (the other schemes hold every row); otherwise its share of the
// world's, so that the reference's cost is spread.
Block reference_rows_here(const Run& run, Block sp_tokens) {
  if (run.cfg.sequence_parallel) return sp_tokens;
  return block_of(run.cfg.tokens(), run.world.size(), run.world.rank());
}

// What theory says of a scheme, before it runs.
SchemeResult predicted(Scheme s, const Config& cfg) {
  SchemeResult r;
  r.scheme = s;
  r.boundary_bytes = boundary_activation_bytes(s, cfg);
  r.has_backward = cfg.backward && s != Scheme::naive;
  r.forward = {
      comm_formula(s, cfg, Direction::forward), {}, flops_per_rank(s, cfg, Direction::forward)};
  if (r.has_backward)
    r.backward = {
        comm_formula(s, cfg, Direction::backward), {}, flops_per_rank(s, cfg, Direction::backward)};
  return r;
}

std::vector<CollectiveCall> both_directions(const SchemeResult& r) {
  std::vector<CollectiveCall> calls = r.forward.formula;
  calls.insert(calls.end(), r.backward.formula.begin(), r.backward.formula.end());
  return calls;
}

}  // namespace

Comparison::Participant::Participant(Scheme scheme, const Run& run, TpComm& group_of_one)
    : scheme_(scheme),
      placement_(scheme, run.world),
      comm_(placement_.on_every_rank() ? run.tp : group_of_one),
      mlp_(placement_.computes_here() ? make_scheme(scheme, run.cfg, comm_) : nullptr) {}

double Comparison::bytes(const Config& cfg) {
  const double f = sizeof(float), y = double(cfg.tokens()) * cfg.hidden_size * f;
  const double y_block = double(block_of(cfg.tokens(), cfg.tp_size, 0).count) * cfg.hidden_size * f;
  const double tensors = cfg.backward ? 2 : 1;  // x_ (and dy_)
  const std::vector<Scheme> schemes = cfg.schemes();
  const bool serial = std::find(schemes.begin(), schemes.end(), Scheme::serial) != schemes.end();
  double bytes = tensors * y;
  if (cfg.sequence_parallel) bytes += tensors * y_block;  // x_sp_ (and dy_sp_)
  if (serial) bytes += tensors * y;                       // received_y_ (and received_dx_)
  if (!cfg.tensors_dir.empty()) bytes += y;               // saved_output_
  return bytes;
}

Comparison::Comparison(const Run& run)
    : cfg_(run.cfg),
      run_{cfg_, run.world, run.tp},
      group_of_one_(TpComm::group_of_one(run.world)),
      sp_tokens_(block_of(run.cfg.tokens(), run.tp.size(), run.tp.rank())),
      x_(run.cfg.tokens(), run.cfg.hidden_size),
      dy_(run.cfg.backward ? run.cfg.tokens() : 0, run.cfg.hidden_size) {
  const Config& cfg = cfg_;
  fill_block(x_, master_input(cfg), cfg.seed, 0, 0);
  fill_block(dy_, master_grad_output(cfg), cfg.seed, 0, 0);
  if (cfg.sequence_parallel) {
    x_sp_ = x_.middleRows(sp_tokens_.first, sp_tokens_.count);
    if (cfg.backward) dy_sp_ = dy_.middleRows(sp_tokens_.first, sp_tokens_.count);
  }
  // The model: every rank builds only its own shards, from the same master tensors.
  for (Scheme s : cfg.schemes()) {
    if (s == Scheme::megatron_overlap) {  // megatron, first in the list, is built already
      overlap_ = choose_overlap(participants_.front());
      cfg_.overlap_chunks = overlap_->chunks;
    }
    participants_.emplace_back(s, run_, group_of_one_);
    results_.push_back(predicted(s, cfg));
    if (participants_.back().placement().computes_here())
      results_.back().weight_bytes = participants_.back().mlp().weight_bytes();
  }
  for (const Participant& p : participants_)
    if (p.scheme() == Scheme::megatron) plant_fault(cfg.fault, p.mlp(), cfg, run.tp);
  reference_ = reference_rows(cfg, x_, dy_, reference_rows_here(run, sp_tokens_));
}

const Matrix& Comparison::x_for(Scheme scheme) const {
  return scheme == Scheme::megatron_sp ? x_sp_ : x_;
}

const Matrix& Comparison::dy_for(Scheme scheme) const {
  return scheme == Scheme::megatron_sp ? dy_sp_ : dy_;
}

const Matrix& Comparison::on_every_rank(const Participant& p, const Matrix* computed,
                                        Matrix& received) {
  if (p.placement().on_every_rank()) return *computed;
  received.resize(run_.cfg.tokens(), run_.cfg.hidden_size);
  if (p.placement().computes_here()) received = *computed;
  run_.world.broadcast_from_root(received.data(), received.size());
  return received;
}

void Comparison::verify_and_count() {
  const Config& cfg = run_.cfg;
  for (std::size_t i = 0; i < participants_.size(); ++i) {
    const Participant& p = participants_[i];
    SchemeResult& r = results_[i];
    const bool here = p.placement().computes_here();
    // The rows a pass's output holds: the scheme's own, or all of them when received.
    const Block held = here ? p.mlp().tokens_here() : Block{0, cfg.tokens()};

    p.comm().reset_stats();
    const Matrix* y_here = here ? &p.mlp().forward(x_for(p.scheme())) : nullptr;
    r.forward.counted = p.comm().stats();
    const Matrix& y = on_every_rank(p, y_here, received_y_);
    r.output = verify_output(p.scheme(), y, held, reference_, cfg, run_.world);
    const bool saved = i == 0 && run_.world.is_root() && !cfg.tensors_dir.empty();
    if (saved) saved_y_ = y;
    if (!r.has_backward) continue;

    p.comm().reset_stats();
    const Matrix* dx_here = here ? &p.mlp().backward(dy_for(p.scheme())) : nullptr;
    r.backward.counted = p.comm().stats();
    const Matrix& dx = on_every_rank(p, dx_here, received_dx_);
    if (saved) saved_dx_ = dx;
    const std::optional<Gradients> shard =
        here ? std::optional<Gradients>(p.mlp().gradients()) : std::nullopt;
    r.gradients = verify_gradients(dx, held, shard, reference_, x_, dy_, cfg, run_.world);
  }
}

OverlapChoice Comparison::choose_overlap(const Participant& megatron) {
  // Worth hiding: a bare all-reduce of megatron's output costs at least a quarter of its
  // compute, well above what chunking itself costs (5-11 % of the compute, measured at 8
  // chunks). Over shared memory it never does at these sizes (and
  // its copies need the same cores as the GEMMs, so there is nothing to overlap with); over a
  // network link it can. Chunks: up to 8, of at least 64 tokens each, so that their GEMMs stay
  // efficient.
  constexpr double kWorthHiding = 0.25;
  constexpr int kMaxChunks = 8;
  constexpr long kMinChunkTokens = 64;
  constexpr int kRepetitions = 5;
  std::vector<double> compute(kRepetitions);
  for (double& seconds : compute) {
    const double comm_before = megatron.comm().stats().seconds();
    const auto start = std::chrono::steady_clock::now();
    megatron.mlp().forward(x_);
    const std::chrono::duration<double> total = std::chrono::steady_clock::now() - start;
    seconds = total.count() - (megatron.comm().stats().seconds() - comm_before);
  }
  run_.world.max_in_place(compute);  // the same choice on every rank
  std::sort(compute.begin(), compute.end());
  Config bare = cfg_;
  bare.overlap_chunks = 1;
  const Summary floor =
      time_collectives(run_, megatron.comm(),
                       comm_formula(Scheme::megatron, bare, Direction::forward), kRepetitions);
  OverlapChoice choice;
  choice.comm_share = floor.median * 1e-3 / compute[kRepetitions / 2];
  choice.worth_hiding = choice.comm_share >= kWorthHiding;
  choice.min_chunk_tokens = kMinChunkTokens;
  if (cfg_.overlap_chunks > 0) {
    choice.chunks = cfg_.overlap_chunks;
    choice.automatic = false;
  } else if (choice.worth_hiding) {
    choice.chunks = int(std::min(cfg_.tokens() / kMinChunkTokens, long(kMaxChunks)));
    choice.chunks = std::max(choice.chunks, 1);
  }
  return choice;
}

SavedPass Comparison::saved_pass() const {
  const Participant& lead = participants_.front();
  // The first TP group's shards, or the serial baseline's whole model on world rank 0.
  const bool saves_shard = lead.placement().computes_here() && (!lead.placement().on_every_rank() ||
                                                                run_.world.rank() < run_.tp.size());
  std::optional<Gradients> shard;
  if (saves_shard && results_.front().has_backward) shard = lead.mlp().gradients();
  return {x_, saved_y_, dy_, saved_dx_, shard};
}

void Comparison::benchmark() {
  for (std::size_t i = 0; i < participants_.size(); ++i) {
    const Participant& p = participants_[i];
    SchemeResult& r = results_[i];
    const Matrix& x = x_for(p.scheme());
    const std::string name = scheme_name(p.scheme());
    r.timing = time_steps(run_, p.placement(), p.comm(), "timing " + name + " forward",
                          [&] { p.mlp().forward(x); });
    r.floor = time_collectives(run_, p.comm(), r.forward.formula);
    if (!r.has_backward) continue;
    const Matrix& dy = dy_for(p.scheme());
    r.train_timing = time_steps(run_, p.placement(), p.comm(), "timing " + name + " fwd+bwd", [&] {
      p.mlp().forward(x);
      p.mlp().backward(dy);
    });
    r.train_floor = time_collectives(run_, p.comm(), both_directions(r));
  }
}

}  // namespace tp_mlp
