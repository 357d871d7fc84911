// comparison: every scheme the flags select, built on this rank from the same master tensors
// and put through the same stages: one pass counted and verified, then the benchmark. Their
// results line up in one list, in report order.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "tp_mlp/matrix.hpp"
#include "tp_mlp/mlp.hpp"
#include "tp_mlp/results.hpp"
#include "tp_mlp/run.hpp"
#include "tp_mlp/saved_tensors.hpp"
#include "tp_mlp/verify.hpp"

namespace tp_mlp {

class Comparison {
 public:
  explicit Comparison(const Run& run);
  // The configuration the stages ran with: the flags, and megatron-overlap's chunks chosen.
  const Config& config() const { return cfg_; }
  const std::optional<OverlapChoice>& overlap() const { return overlap_; }
  // What it allocates besides the schemes and the reference: inputs, their token blocks, and
  // the copies it verifies and saves, on the rank that holds the most.
  static double bytes(const Config& cfg);

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
  class Participant {
   public:
    Participant(Scheme scheme, const Run& run, TpComm& group_of_one);
    Scheme scheme() const { return scheme_; }
    const Placement& placement() const { return placement_; }
    TpComm& comm() const { return comm_; }
    MlpScheme& mlp() const { return *mlp_; }  // where placement().computes_here()

   private:
    Scheme scheme_;
    Placement placement_;
    TpComm& comm_;                    // the run's TP group, or the baseline's group of one
    std::unique_ptr<MlpScheme> mlp_;  // built only where it computes
  };

  const Matrix& x_for(Scheme scheme) const;  // all tokens, or megatron-sp's block of them
  const Matrix& dy_for(Scheme scheme) const;
  // A pass's output on every rank: the scheme's own, or the baseline's sent from rank 0.
  const Matrix& on_every_rank(const Participant& p, const Matrix* computed, Matrix& received);

  // How many token chunks hide megatron's all-reduce here, measured on megatron.
  OverlapChoice choose_overlap(const Participant& megatron);

  Config cfg_;
  const Run run_;  // the caller's world and group, with cfg_
  std::optional<OverlapChoice> overlap_;
  TpComm group_of_one_;
  Block sp_tokens_;                  // megatron-sp's token block on this rank
  Matrix x_, dy_;                    // [tokens, H]; dy_ empty without --backward
  Matrix x_sp_, dy_sp_;              // [sp_tokens_, H], for megatron-sp
  Matrix received_y_, received_dx_;  // [tokens, H], the baseline's outputs, sent from rank 0
  Matrix saved_y_, saved_dx_;        // [tokens, H], the first scheme's, on world rank 0 to save
  ReferenceRows reference_;
  std::vector<Participant> participants_;
  std::vector<SchemeResult> results_;
};

}  // namespace tp_mlp
