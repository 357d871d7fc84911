// comparison: every scheme the flags select, built on this rank from the same master tensors
// and put through the same stages: one pass counted and verified, then the benchmark. Their
// results line up in one list, in report order. Everything it builds, it builds in the
// workspace: on a planning workspace, constructing it is how a run learns what it will need.
#pragma once

#include <array>
#include <optional>
#include <vector>

#include "tp_mlp/bench.hpp"
#include "tp_mlp/matrix.hpp"
#include "tp_mlp/mlp.hpp"
#include "tp_mlp/run.hpp"
#include "tp_mlp/run_plan.hpp"
#include "tp_mlp/saved_tensors.hpp"
#include "tp_mlp/scheme_result.hpp"
#include "tp_mlp/verify.hpp"
#include "tp_mlp/workspace.hpp"

namespace tp_mlp {

class Comparison {
 public:
  Comparison(Workspace& ws, const Run& run);

  // What was decided while building: megatron-overlap's chunks, and why.
  const RunPlan& plan() const { return plan_; }
  const std::optional<OverlapChoice>& overlap() const { return overlap_; }

  // 1. and 2.: one pass of each scheme, counted by the communication layer as it happens and
  // checked against the float64 reference on this rank's share of the token rows.
  void verify_and_count();
  // 3.: each scheme timed, next to the bare collectives of its own sizes.
  void benchmark();

  const std::vector<SchemeResult>& results() const { return results_; }
  // The first scheme's verification pass, for --save-tensors: until benchmark() runs it again.
  SavedPass saved_pass() const;

 private:
  // How this rank takes part in one scheme: it computes it, or (the serial baseline, on every
  // rank but world rank 0) it waits while world rank 0 does.
  struct Participant {
    Scheme scheme;
    Placement placement;
    TpComm* comm = nullptr;    // the run's TP group, or the baseline's group of one
    MlpScheme* mlp = nullptr;  // where placement.computes_here()
  };
  Participant build(Workspace& ws, Scheme scheme, int overlap_chunks);

  ConstMatrixRef x_for(Scheme scheme) const;  // all tokens, or megatron-sp's block of them
  ConstMatrixRef dy_for(Scheme scheme) const;
  // A pass's output on every rank: the scheme's own, or the baseline's sent from rank 0.
  ConstMatrixRef on_every_rank(const Participant& p, std::optional<ConstMatrixRef> computed,
                               Tensor<float>& received);
  // A layer's blocks, each from the input the scheme gave it (layer_verify.hpp): the stages
  // of the passes just run (mlp.hpp) whole [tokens, H] on every rank first, megatron-sp's
  // token blocks gathered and the baseline's sent from world rank 0. Nothing for other blocks.
  void verify_blocks(const Participant& p, SchemeResult& r);
  // The digest of a pass's output t (its rows `held`), every copy's.
  TensorDigest output_digest(const char* tensor, const Participant& p, const ConstMatrixRef& t,
                             Block held) const;
  // The digest of every weight and bias gradient, every TP group's shards added up: the
  // block's (the layer's: both blocks' and the norms'), each piece through add(tensor, piece).
  void add_gradient_digests(SchemeResult& r, const Participant& p) const;
  template <typename Add>
  void add_mlp_gradient_digests(Add add, const Gradients& shard) const;
  template <typename Add>
  void add_attention_gradient_digests(Add add, const Participant& p, const Gradients& shard) const;
  // How many token chunks hide megatron's all-reduce here: timed, on candidates built in `ws`
  // and released again.
  OverlapChoice choose_overlap(Workspace& ws, const Participant& megatron);

  const Run run_;
  RunPlan plan_;
  std::optional<OverlapChoice> overlap_;
  TpComm group_of_one_;
  Block sp_tokens_;                         // megatron-sp's token block on this rank
  Tensor<float> x_, dy_;                    // [tokens, H]; dy_ empty without --backward
  Tensor<float> received_y_, received_dx_;  // [tokens, H], the baseline's outputs, from rank 0
  Tensor<float> saved_y_, saved_dx_;   // [tokens, H], the first scheme's, on world rank 0 to save
  CollectiveReplay& replay_;           // the floors' buffers
  Tensor<float> stage_piece_;          // --block layer: [tokens, H], a stage before it is gathered
  std::vector<Tensor<float>> stages_;  // --block layer: [tokens, H] each, a LayerStages's
  SaveBuffers* save_buffers_ = nullptr;  // with --save-tensors
  BlockReference& reference_;            // the MLP's, the attention block's or the layer's
  std::vector<Participant> participants_;
  std::size_t saved_ = 0;  // the participant --save-tensors writes
  std::vector<SchemeResult> results_;
};

}  // namespace tp_mlp
