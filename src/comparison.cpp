// comparison: the stages every scheme goes through (see comparison.hpp).
#include "tp_mlp/comparison.hpp"

#include <algorithm>
#include <chrono>

#include "tp_mlp/analysis.hpp"
#include "tp_mlp/attention_verify.hpp"
#include "tp_mlp/digest.hpp"
#include "tp_mlp/faults.hpp"
#include "tp_mlp/head_sharding.hpp"
#include "tp_mlp/init.hpp"
#include "tp_mlp/layer_verify.hpp"

namespace tp_mlp {
namespace {

// The token rows this rank checks against the reference: with sequence parallelism the block
// its megatron-sp holds (the other schemes hold every row); otherwise its share of the
// world's, so that the reference's cost is spread.
Block reference_rows_here(const Run& run) {
  if (run.cfg.sequence_parallel) return block_of(run.cfg.tokens(), run.tp.size(), run.tp.rank());
  return block_of(run.cfg.tokens(), run.world.size(), run.world.rank());
}

// What theory says of a scheme, before it runs.
SchemeResult predicted(Scheme s, const Config& cfg, int overlap_chunks) {
  SchemeResult r;
  r.scheme = s;
  r.boundary_bytes = boundary_activation_bytes(s, cfg);
  r.has_backward = cfg.backward && s != Scheme::naive;
  r.forward = {comm_formula(s, cfg, Direction::forward, overlap_chunks),
               {},
               flops_per_rank(s, cfg, Direction::forward)};
  if (r.has_backward)
    r.backward = {comm_formula(s, cfg, Direction::backward, overlap_chunks),
                  {},
                  flops_per_rank(s, cfg, Direction::backward)};
  return r;
}

// Every collective any selected scheme's passes make, with any chunk count: what the floors
// replay.
std::vector<CollectiveCall> every_call(const Config& cfg) {
  std::vector<CollectiveCall> calls;
  for (Scheme s : cfg.schemes())
    for (Direction d : {Direction::forward, Direction::backward})
      for (const CollectiveCall& c : comm_formula(s, cfg, d)) calls.push_back(c);
  return calls;  // a chunk's collectives are never larger than the whole pass's
}

std::vector<CollectiveCall> both_directions(const SchemeResult& r) {
  std::vector<CollectiveCall> calls = r.forward.formula;
  calls.insert(calls.end(), r.backward.formula.begin(), r.backward.formula.end());
  return calls;
}

// megatron-overlap and its invariant twin run the chunks chosen once megatron is built.
bool chunked(Scheme scheme) { return plain_of(scheme) == Scheme::megatron_overlap; }

bool sequence_parallel(Scheme scheme) { return plain_of(scheme) == Scheme::megatron_sp; }

// The digest of a tensor of which this rank's piece contributes `mine`, for every copy the job
// holds: a copy is `ranks_per_copy` consecutive world ranks whose pieces add up to the whole
// (a TP group's shards, or one rank's whole tensor), and the first `copies` copies hold one.
TensorDigest digest_of(const char* tensor, std::uint64_t mine, const World& world,
                       int ranks_per_copy, int copies) {
  const std::vector<std::uint64_t> all = world.all_gather(mine);
  TensorDigest d{tensor};
  for (int copy = 0; copy < copies; ++copy) {
    std::uint64_t value = 0;
    for (int r = 0; r < ranks_per_copy; ++r)
      value += all[std::size_t(copy) * std::size_t(ranks_per_copy) + std::size_t(r)];
    if (copy == 0) d.value = value;
    d.copies_match = d.copies_match && value == d.value;
  }
  return d;
}

// The reference of the run's block: the MLP's, split over the ranks by tokens; attention's and
// the layer's, whole on every rank (a sequence's tokens see each other).
BlockReference& make_reference(Workspace& ws, const Run& run) {
  if (run.cfg.block == BlockKind::attention) return ws.make<AttentionReference>(ws, run.cfg);
  if (run.cfg.block == BlockKind::layer)
    return ws.make<LayerReference>(ws, run.cfg, reference_rows_here(run));
  return ws.make<Reference>(ws, run.cfg, reference_rows_here(run));
}

}  // namespace

Comparison::Participant Comparison::build(Workspace& ws, Scheme scheme, int overlap_chunks) {
  const Placement placement(scheme, run_.world);
  TpComm* comm = placement.on_every_rank() ? &run_.tp : &group_of_one_;
  MlpScheme* mlp = nullptr;
  if (placement.computes_here())
    mlp = &make_scheme(ws, scheme, run_.cfg, *comm, chunked(scheme) ? overlap_chunks : 1);
  return {scheme, placement, comm, mlp};
}

Comparison::Comparison(Workspace& ws, const Run& run)
    : run_(run),
      group_of_one_(TpComm::group_of_one(run.world)),
      sp_tokens_(block_of(run.cfg.tokens(), run.tp.size(), run.tp.rank())),
      x_(ws.matrix<float>(run.cfg.tokens(), run.cfg.hidden_size)),
      dy_(ws.matrix<float>(run.cfg.backward ? run.cfg.tokens() : 0, run.cfg.hidden_size)),
      received_y_(ws.matrix<float>(run.cfg.runs(Scheme::serial) ? run.cfg.tokens() : 0,
                                   run.cfg.hidden_size)),
      received_dx_(ws.matrix<float>(received_y_.rows() > 0 ? dy_.rows() : 0, run.cfg.hidden_size)),
      saved_y_(ws.matrix<float>(
          run.world.is_root() && !run.cfg.tensors_dir.empty() ? run.cfg.tokens() : 0,
          run.cfg.hidden_size)),
      saved_dx_(ws.matrix<float>(saved_y_.rows() > 0 ? dy_.rows() : 0, run.cfg.hidden_size)),
      replay_(ws.make<CollectiveReplay>(ws, every_call(run.cfg), run.tp.size())),
      stage_piece_(ws.matrix<float>(run.cfg.block == BlockKind::layer ? run.cfg.tokens() : 0,
                                    run.cfg.hidden_size)),
      reference_(make_reference(ws, run)) {
  const Config& cfg = run.cfg;
  for (int i = 0; i < kStages; ++i)
    stages_.push_back(ws.matrix<float>(stage_piece_.rows(), cfg.hidden_size));
  if (!cfg.tensors_dir.empty()) save_buffers_ = &ws.make<SaveBuffers>(ws, cfg, run.world.is_root());
  if (!ws.planning()) {
    fill_block(x_, master_input(cfg), cfg.seed, 0, 0);
    fill_block(dy_, master_grad_output(cfg), cfg.seed, 0, 0);
    reference_.compute(x_, dy_);
  }
  // The model: every rank builds only its own shards, from the same master tensors.
  // megatron-overlap is built last, once its chunks are chosen by timing candidates in the
  // workspace's top, which it then takes for itself: the plan holds the largest candidate.
  const std::vector<Scheme> schemes = cfg.schemes();
  participants_.reserve(schemes.size());
  results_.reserve(schemes.size());
  // --save-tensors writes the first scheme's pass, or with --invariant the first invariant one's.
  for (std::size_t i = 0; i < schemes.size(); ++i)
    if (is_invariant(schemes[i])) {
      saved_ = i;
      break;
    }
  for (Scheme s : schemes)
    participants_.push_back(chunked(s) ? Participant{s, {s, run.world}} : build(ws, s, 1));
  if (cfg.overlap) {
    overlap_ = choose_overlap(ws, participants_.front());  // megatron is first in the list
    plan_.overlap_chunks = overlap_->chunks;
  }
  for (Participant& p : participants_)
    if (chunked(p.scheme)) p = build(ws, p.scheme, plan_.overlap_chunks);
  for (const Participant& p : participants_) {
    results_.push_back(predicted(p.scheme, cfg, plan_.overlap_chunks));
    if (p.mlp) results_.back().weight_bytes = p.mlp->weight_bytes();
  }
  if (ws.planning()) return;
  // Every fault goes into megatron; one-ulp, into the partial sums of its invariant twin; the
  // norms' unsummed gradients, into megatron-sp, the only scheme that sums them.
  const Scheme faulty = cfg.fault == Fault::one_ulp                ? Scheme::megatron_inv
                        : cfg.fault == Fault::norm_grad_not_summed ? Scheme::megatron_sp
                                                                   : Scheme::megatron;
  for (const Participant& p : participants_)
    if (p.scheme == faulty) plant_fault(cfg.fault, *p.mlp, cfg, run.tp);
}

ConstMatrixRef Comparison::x_for(Scheme scheme) const {
  if (sequence_parallel(scheme)) return x_.middleRows(sp_tokens_.first, sp_tokens_.count);
  return x_;
}

ConstMatrixRef Comparison::dy_for(Scheme scheme) const {
  if (sequence_parallel(scheme)) return dy_.middleRows(sp_tokens_.first, sp_tokens_.count);
  return dy_;
}

ConstMatrixRef Comparison::on_every_rank(const Participant& p,
                                         std::optional<ConstMatrixRef> computed,
                                         Tensor<float>& received) {
  if (p.placement.on_every_rank()) return *computed;
  if (p.placement.computes_here()) received = *computed;
  run_.world.broadcast_from_root(received.data(), received.size());
  return received;
}

void Comparison::verify_and_count() {
  const Config& cfg = run_.cfg;
  for (std::size_t i = 0; i < participants_.size(); ++i) {
    const Participant& p = participants_[i];
    SchemeResult& r = results_[i];
    const bool here = p.placement.computes_here();
    // The rows a pass's output holds: the scheme's own, or all of them when received.
    const Block held = here ? p.mlp->tokens_here() : Block{0, cfg.tokens()};

    p.comm->reset_stats();
    std::optional<ConstMatrixRef> y_here;
    if (here) y_here.emplace(p.mlp->forward(x_for(p.scheme)));
    r.forward.counted = p.comm->stats();
    const ConstMatrixRef y = on_every_rank(p, y_here, received_y_);
    r.output = reference_.verify_output(p.scheme, y, held, run_.world);
    r.digests = {output_digest("Y", p, y, held)};
    const bool saved = i == saved_ && saved_y_.size() > 0;
    if (saved) saved_y_ = y;
    if (!r.has_backward) {
      verify_blocks(p, r);
      continue;
    }

    p.comm->reset_stats();
    std::optional<ConstMatrixRef> dx_here;
    if (here) dx_here.emplace(p.mlp->backward(dy_for(p.scheme)));
    r.backward.counted = p.comm->stats();
    const ConstMatrixRef dx = on_every_rank(p, dx_here, received_dx_);
    if (saved) saved_dx_ = dx;
    r.gradients = reference_.verify_gradients(p.scheme, dx, held, p.mlp, x_, dy_, run_.world);
    verify_blocks(p, r);
    r.digests.push_back(output_digest("dX", p, dx, held));
    add_gradient_digests(r, p);
  }
}

void Comparison::verify_blocks(const Participant& p, SchemeResult& r) {
  if (stages_.front().size() == 0) return;  // not a layer
  const int count = r.has_backward ? kStages : int(Stage::mlp_dx);
  std::optional<LayerStages> mine;
  if (p.placement.computes_here()) mine.emplace(p.mlp->layer_stages());
  for (int i = 0; i < count; ++i) {
    Tensor<float>& whole = stages_[std::size_t(i)];
    if (!p.placement.on_every_rank()) {  // the baseline, on world rank 0
      if (mine) whole = *(*mine)[std::size_t(i)];
      run_.world.broadcast_from_root(whole.data(), whole.size());
      continue;
    }
    const ConstMatrixRef& piece = *(*mine)[std::size_t(i)];
    if (sequence_parallel(p.scheme)) {
      auto contiguous = stage_piece_.topRows(piece.rows());
      contiguous = piece;
      p.comm->all_gather_rows(contiguous.data(), whole.data(), whole.rows(), whole.cols());
    } else {
      whole = piece;
    }
  }
  r.blocks = reference_.verify_blocks(p.scheme, stages_, dy_, p.mlp, run_.world);
}

TensorDigest Comparison::output_digest(const char* tensor, const Participant& p,
                                       const ConstMatrixRef& t, Block held) const {
  // Each rank holds all of it, or, under sequence parallelism, each rank of a group a block.
  const int per_copy = sequence_parallel(p.scheme) ? run_.tp.size() : 1;
  return digest_of(tensor, digest(t, held.first, 0, t.cols()), run_.world, per_copy,
                   run_.world.size() / per_copy);
}

void Comparison::add_gradient_digests(SchemeResult& r, const Participant& p) const {
  // A TP group's shards add up to one copy of each master-shaped gradient; the baseline's is
  // world rank 0's alone.
  const bool here = p.placement.computes_here();
  const int per_copy = p.placement.on_every_rank() ? run_.tp.size() : 1;
  const int copies = p.placement.on_every_rank() ? run_.world.size() / per_copy : 1;
  auto add = [&](const char* tensor, auto piece) {
    r.digests.push_back(digest_of(tensor, here ? piece() : 0, run_.world, per_copy, copies));
  };
  const Config& cfg = run_.cfg;
  if (cfg.block != BlockKind::layer) {
    const Gradients shard = here ? p.mlp->gradients() : Gradients{};
    if (cfg.block == BlockKind::mlp)
      add_mlp_gradient_digests(add, shard);
    else
      add_attention_gradient_digests(add, p, shard);
    return;
  }
  const LayerGradients g = here ? p.mlp->layer_gradients() : LayerGradients{};
  add_attention_gradient_digests(add, p, g.attention);
  add_mlp_gradient_digests(add, g.mlp);
  // The norms' gradients are whole on every rank of a group: its first rank's speaks.
  const long H = cfg.hidden_size;
  const bool first = p.comm->rank() == 0;
  auto whole = [&](const Tensor<float>* grad) { return first ? digest(*grad, 0, 0, H) : 0; };
  add("norm1.dw", [&] { return whole(g.norm1.weight); });
  add("norm2.dw", [&] { return whole(g.norm2.weight); });
  if (cfg.norm_kind() != NormKind::layer) return;
  add("norm1.db", [&] { return whole(g.norm1.bias); });
  add("norm2.db", [&] { return whole(g.norm2.bias); });
}

template <typename Add>
void Comparison::add_mlp_gradient_digests(Add add, const Gradients& shard) const {
  const Config& cfg = run_.cfg;
  const long H = cfg.hidden_size, F = cfg.intermediate_size();
  const Block cols = shard.columns;
  const char* dw_in[] = {"dW1", "dW3"};
  const char* db_in[] = {"db1", "db3"};
  for (int j = 0; j < cfg.projections(); ++j)
    add(dw_in[j], [&] {
      return digest(shard.w_in->middleCols(j * cols.count, cols.count), 0, cols.first, F);
    });
  add("dW2", [&] { return digest(*shard.w_out, cols.first, 0, H); });
  if (!cfg.bias) return;
  for (int j = 0; j < cfg.projections(); ++j)
    add(db_in[j], [&] {
      return digest(shard.b_in->middleCols(j * cols.count, cols.count), 0, cols.first, F);
    });
  // b2's gradient is whole on every rank of a group: the one at F's first column speaks.
  add("db2", [&] { return cols.first == 0 ? digest(*shard.b_out, 0, 0, H) : 0; });
}

template <typename Add>
void Comparison::add_attention_gradient_digests(Add add, const Participant& p,
                                                const Gradients& shard) const {
  // The shard's columns are its query heads': [dWq | dWk | dWv] of them and of the KV heads
  // they use, dWo's rows. A replicated KV head's gradient is on each of its holders: the first
  // speaks for it.
  const Config& cfg = run_.cfg;
  const long H = cfg.hidden_size, N = cfg.heads(), K = cfg.kv_heads(), d = cfg.head_size();
  const HeadSharding sharding(N, K, p.comm->size());
  const FusedColumns at = fused_qkv_columns(shard.columns, N, K, d);
  auto fused = [&](const Tensor<float>* grad, int j) -> std::uint64_t {
    if (at.here[j].count == 0) return 0;  // a rank with no query head (N < T) holds none
    if (j == 0)
      return digest(grad->middleCols(at.here[0].first, at.here[0].count), 0, at.master[0].first,
                    N * d);
    std::uint64_t sum = 0;
    const long first_kv = at.master[1].first / d - N;  // Wk's columns follow Wq's N·d
    for (long i = 0; i < at.here[j].count / d; ++i) {
      const long kv = first_kv + i;
      if (sharding.holders(kv).first == p.comm->rank())
        sum += digest(grad->middleCols(at.here[j].first + i * d, d), 0, kv * d, K * d);
    }
    return sum;
  };
  const char* dw_in[] = {"dWq", "dWk", "dWv"};
  const char* db_in[] = {"dbq", "dbk", "dbv"};
  for (int j = 0; j < 3; ++j) add(dw_in[j], [&] { return fused(shard.w_in, j); });
  add("dWo", [&] { return digest(*shard.w_out, at.master[0].first, 0, H); });
  if (!cfg.bias) return;
  for (int j = 0; j < 3; ++j) add(db_in[j], [&] { return fused(shard.b_in, j); });
  // bo's gradient is whole on every rank of a group: its first rank's speaks.
  add("dbo", [&] { return p.comm->rank() == 0 ? digest(*shard.b_out, 0, 0, H) : 0; });
}

OverlapChoice Comparison::choose_overlap(Workspace& ws, const Participant& megatron) {
  // Worth hiding: a bare all-reduce of megatron's output costs at least a quarter of its
  // compute. Over shared memory it never does at these sizes (and its copies need the same
  // cores as the GEMMs, so there is nothing to overlap with); over a network link it can. Then
  // each candidate chunking is built and timed, against megatron itself, and the fastest is
  // kept: what chunking costs depends on the CPU (on an AVX2 Zen 3, two chunks were measured
  // at half the speed of one), so it is measured, not assumed. Chunks hold at least 64 tokens,
  // so that their GEMMs stay efficient.
  constexpr double kWorthHiding = 0.25;
  constexpr std::array<int, 3> kCandidates = {2, 4, 8};
  constexpr long kMinChunkTokens = 64;
  constexpr int kRepetitions = 5;
  OverlapChoice choice;
  choice.min_chunk_tokens = kMinChunkTokens;
  if (run_.cfg.overlap_chunks > 0) {  // --overlap-chunks decides
    choice.chunks = run_.cfg.overlap_chunks;
    choice.automatic = false;
    return choice;
  }
  std::vector<int> candidates;
  for (int c : kCandidates)
    if (run_.cfg.tokens() / c >= kMinChunkTokens) candidates.push_back(c);
  if (ws.planning()) {
    // Nothing to time: the plan takes the chunking that needs the most memory (a GEMM plan per
    // height of block), so that the chunked schemes built after the choice fit, whatever it is.
    std::size_t most = 0;
    candidates.insert(candidates.begin(), 1);
    for (int c : candidates) {
      const WorkspaceScope scope(ws);
      const std::size_t before = ws.mark().used;
      build(ws, Scheme::megatron_overlap, c);
      if (ws.mark().used - before > most) {
        most = ws.mark().used - before;
        choice.chunks = c;
      }
    }
    return choice;
  }
  // Median forward ms of `p` over the repetitions, the slowest rank's, and its compute alone.
  auto timed = [&](const Participant& p, double* compute_ms) {
    std::vector<double> total(kRepetitions), compute(kRepetitions);
    const ConstMatrixRef x = x_for(p.scheme);
    for (int i = 0; i < kRepetitions; ++i) {
      const double comm_before = p.comm->stats().seconds();
      const auto start = std::chrono::steady_clock::now();
      p.mlp->forward(x);
      const std::chrono::duration<double, std::milli> ms = std::chrono::steady_clock::now() - start;
      total[std::size_t(i)] = ms.count();
      compute[std::size_t(i)] = ms.count() - (p.comm->stats().seconds() - comm_before) * 1e3;
    }
    run_.world.max_in_place(total);  // the same choice on every rank
    run_.world.max_in_place(compute);
    if (compute_ms) *compute_ms = summarize(compute).median;
    return summarize(total).median;
  };
  double compute_ms = 0;
  const double megatron_ms = timed(megatron, &compute_ms);
  const Summary floor =
      time_collectives(run_, *megatron.comm, replay_,
                       comm_formula(Scheme::megatron, run_.cfg, Direction::forward), kRepetitions);
  choice.comm_share = floor.median / compute_ms;
  choice.worth_hiding = choice.comm_share >= kWorthHiding;
  if (!choice.worth_hiding) return choice;
  double best_ms = megatron_ms;
  for (int c : candidates) {
    const WorkspaceScope scope(ws);
    const double ms = timed(build(ws, Scheme::megatron_overlap, c), nullptr);
    choice.candidate_chunks[choice.candidates] = c;
    choice.candidate_ms[choice.candidates++] = ms;
    if (ms < best_ms) {
      best_ms = ms;
      choice.chunks = c;
    }
  }
  return choice;
}

SavedPass Comparison::saved_pass() const {
  const Participant& lead = participants_[saved_];
  // The first TP group's shards, or the serial baseline's whole model on world rank 0.
  const bool saves_shard = lead.placement.computes_here() &&
                           (!lead.placement.on_every_rank() || run_.world.rank() < run_.tp.size());
  std::optional<Gradients> shard;
  std::optional<LayerGradients> parts;
  if (saves_shard && results_[saved_].has_backward) {
    const BlockKind block = run_.cfg.block;
    if (block == BlockKind::mlp) shard = lead.mlp->gradients();
    if (block == BlockKind::attention) parts = LayerGradients{lead.mlp->gradients(), {}, {}, {}};
    if (block == BlockKind::layer) parts = lead.mlp->layer_gradients();
  }
  return {x_, saved_y_, dy_, saved_dx_, shard, parts, *save_buffers_};
}

void Comparison::benchmark() {
  for (std::size_t i = 0; i < participants_.size(); ++i) {
    const Participant& p = participants_[i];
    SchemeResult& r = results_[i];
    const ConstMatrixRef x = x_for(p.scheme);
    const std::string name = scheme_name(p.scheme);
    r.timing = time_steps(run_, p.placement, *p.comm, "timing " + name + " forward",
                          [&] { p.mlp->forward(x); });
    r.floor = time_collectives(run_, *p.comm, replay_, r.forward.formula);
    if (!r.has_backward) continue;
    const ConstMatrixRef dy = dy_for(p.scheme);
    r.train_timing = time_steps(run_, p.placement, *p.comm, "timing " + name + " fwd+bwd", [&] {
      p.mlp->forward(x);
      p.mlp->backward(dy);
    });
    r.train_floor = time_collectives(run_, *p.comm, replay_, both_directions(r));
  }
}

}  // namespace tp_mlp
