// The workspace: planning adds up what a build would take and allocates none of it; a real
// workspace hands out exactly that; what is built is destroyed in reverse order. And a run's
// plan, the memory check's estimate, follows what the run builds.
#include <gtest/gtest.h>

#include <vector>

#include "one_rank_model.hpp"
#include "tp_mlp/comparison.hpp"
#include "tp_mlp/memory.hpp"
#include "tp_mlp/workspace.hpp"

using namespace tp_mlp;

namespace {

constexpr std::size_t kLine = Workspace::kAlignment;

// Records its own destruction, to check the order.
struct Recorder {
  Recorder(std::vector<int>& destroyed, int number) : log(destroyed), id(number) {}
  ~Recorder() { log.push_back(id); }
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;
  std::vector<int>& log;
  int id;
};

}  // namespace

TEST(Workspace, PlanningAddsUpAlignedRequestsAndAllocatesNone) {
  Workspace plan;
  EXPECT_TRUE(plan.planning());
  const Tensor<float> a = plan.matrix<float>(3, 5);  // 60 bytes: a line
  EXPECT_EQ(static_cast<const void*>(a.data()), Workspace::nowhere<void>());
  plan.matrix<double>(10, 10);  // 800 bytes: 13 lines
  plan.scratch(100);
  plan.scratch(3000);
  EXPECT_EQ(plan.plan().bytes, 14 * kLine);
  EXPECT_EQ(plan.plan().scratch, 47 * kLine);  // the largest request, once
}

TEST(Workspace, ARealWorkspaceHandsOutThePlanAndNoMore) {
  Workspace plan;
  plan.matrix<float>(4, 16);
  plan.matrix<float>(1, 1);
  plan.scratch(10);
  Workspace real(plan.plan());
  EXPECT_FALSE(real.planning());
  const Tensor<float> a = real.matrix<float>(4, 16), b = real.matrix<float>(1, 1);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a.data()) % kLine, 0u);
  EXPECT_EQ(static_cast<const void*>(b.data()), static_cast<const void*>(a.data() + 64));
  EXPECT_NE(real.scratch(10), nullptr);
  EXPECT_THROW(real.scratch(100), std::logic_error);
  EXPECT_THROW(real.matrix<float>(1, 1), std::logic_error);
}

// Makes 1, then 2 and 3 in a scope, logging destructions in `log`.
void make_and_release(Workspace& ws, std::vector<int>& log) {
  ws.make<Recorder>(log, 1);
  const std::size_t before = ws.mark().used;
  {
    const WorkspaceScope scope(ws);
    ws.make<Recorder>(log, 2);
    ws.make<Recorder>(log, 3);
    EXPECT_GT(ws.mark().used, before);
  }
  EXPECT_EQ(ws.mark().used, before);  // its memory is handed out again
}

TEST(Workspace, ReleaseDestroysWhatWasMadeSinceInReverseAndHandsItsMemoryOutAgain) {
  std::vector<int> planned, built;
  {
    Workspace plan;
    make_and_release(plan, planned);
    EXPECT_EQ(planned, (std::vector<int>{3, 2}));
    Workspace real(plan.plan());  // room for 1, 2 and 3 at once: the high-water mark
    make_and_release(real, built);
    EXPECT_EQ(built, (std::vector<int>{3, 2}));
    real.make<Recorder>(built, 4);  // where 2 was
    real.make<Recorder>(built, 5);  // where 3 was
    EXPECT_THROW(real.make<Recorder>(built, 6), std::logic_error);
  }
  EXPECT_EQ(planned, (std::vector<int>{3, 2, 1}));  // the rest at the end, newest first
  EXPECT_EQ(built, (std::vector<int>{3, 2, 5, 4, 1}));
}

namespace {

// The plan of a whole run of one rank, as main() makes it before checking memory.
WorkspacePlan run_plan(const Config& cfg) {
  World world;
  TpComm tp(world, cfg.tp_size);
  const Run run{cfg, world, tp};
  Workspace planning;
  const Comparison comparison(planning, run);
  return planning.plan();
}

}  // namespace

TEST(RunPlan, GrowsWithTheSchemesRunByTheirWeightsAtLeast) {
  Config cfg;
  cfg.tp_size = 1;
  cfg.hidden_size = 256;
  cfg.scheme_choice = SchemeChoice::megatron;
  const double megatron = double(run_plan(cfg).total());
  EXPECT_GE(megatron, 8.0 * 256 * 256 * 4);  // 8H² floats
  cfg.scheme_choice = SchemeChoice::all;
  const double all = double(run_plan(cfg).total());
  EXPECT_GE(all - megatron, 2 * 8.0 * 256 * 256 * 4);  // naive's and serial's weights too
}

TEST(RunPlan, WhatDoesNotFitIsRefusedBeforeAnythingIsAllocated) {
  Config cfg;
  cfg.tp_size = 1;
  cfg.hidden_size = 65536;  // 8H² floats alone are 128 GiB
  const double bytes = double(run_plan(cfg).total());
  const std::string why = memory_problem(bytes, bytes, 1, 16.0 * (1L << 30));
  EXPECT_NE(why.find("needs about"), std::string::npos) << why;
  EXPECT_NE(why.find("16.00 GiB is available"), std::string::npos) << why;
}

TEST(RunPlan, CoversWhateverChunkingTheRunChooses) {
  // megatron-overlap's chunks are chosen by timing, after the plan is made, and megatron-overlap
  // and megatron-overlap-inv are built with them: the plan must hold any candidate's.
  Config cfg;
  cfg.tp_size = 1;
  cfg.hidden_size = 64;
  cfg.batch_size = 8;
  cfg.seq_len = 128;  // 1024 tokens: every candidate, 2, 4 and 8 chunks, is one
  cfg.scheme_choice = SchemeChoice::megatron;
  cfg.overlap = cfg.invariant = cfg.backward = true;
  const std::size_t automatic = run_plan(cfg).total();
  for (int chunks : {1, 2, 4, 8}) {
    cfg.overlap_chunks = chunks;
    EXPECT_GE(automatic, run_plan(cfg).total()) << chunks << " chunks";
  }
}
