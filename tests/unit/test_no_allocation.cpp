// Proof of the two promises the memory check rests on, for every scheme, element type and flag
// combination, on whichever GEMM backend this build has:
//  - the plan is what is allocated: building a scheme in a workspace made from its plan
//    allocates that workspace, exactly its planned size, and nothing else of ours;
//  - a pass allocates nothing of ours: a forward and backward pass, after one warm-up pass.
// malloc and friends are counted (operator new goes through malloc). An allocation made inside a
// library call (oneDNN building or running a primitive, dnnl_sgemm's packing buffers, MPI moving
// data: library_scope.hpp) is the library's own and counted apart; everything else is ours.
#include <cerrno>
#include <tuple>

#include <gtest/gtest.h>

#include "one_rank_model.hpp"
#include "tp_mlp/gemm.hpp"
#include "tp_mlp/library_scope.hpp"

// glibc's own allocator, under its own (reserved) names, which the counters below call.
extern "C" {
void* __libc_malloc(std::size_t);                 // NOLINT(bugprone-reserved-identifier)
void* __libc_calloc(std::size_t, std::size_t);    // NOLINT(bugprone-reserved-identifier)
void* __libc_realloc(void*, std::size_t);         // NOLINT(bugprone-reserved-identifier)
void* __libc_memalign(std::size_t, std::size_t);  // NOLINT(bugprone-reserved-identifier)
}

namespace {
bool counting = false;
long ours = 0, ours_bytes = 0, libraries = 0;
void note(std::size_t bytes) {
  if (!counting) return;
  if (tp_mlp::LibraryScope::open()) {
    ++libraries;
    return;
  }
  ++ours;
  ours_bytes += long(bytes);
}
void start_counting() {
  ours = ours_bytes = libraries = 0;
  counting = true;
}
}  // namespace

extern "C" {
void* malloc(std::size_t n) { return note(n), __libc_malloc(n); }
void* calloc(std::size_t n, std::size_t size) { return note(n * size), __libc_calloc(n, size); }
void* realloc(void* p, std::size_t n) { return note(n), __libc_realloc(p, n); }
void* aligned_alloc(std::size_t alignment, std::size_t n) {
  return note(n), __libc_memalign(alignment, n);
}
void* memalign(std::size_t alignment, std::size_t n) {
  return note(n), __libc_memalign(alignment, n);
}
int posix_memalign(void** p, std::size_t alignment, std::size_t n) {
  note(n);
  *p = __libc_memalign(alignment, n);
  return *p ? 0 : ENOMEM;
}
}

using namespace tp_mlp;

// Every scheme, in fp32 and in bf16 with either reduce dtype (an fp32 model is never reduced
// in bf16: validate.cpp refuses it).
struct Types {
  DType dtype, reduce;
};
using Variant = std::tuple<Scheme, Types>;
const auto kVariants = ::testing::Combine(
    ::testing::Values(Scheme::megatron, Scheme::megatron_sp, Scheme::megatron_overlap,
                      Scheme::megatron_inv, Scheme::megatron_sp_inv, Scheme::megatron_overlap_inv,
                      Scheme::naive, Scheme::serial, Scheme::serial_inv),
    ::testing::Values(Types{DType::fp32, DType::fp32}, Types{DType::bf16, DType::bf16},
                      Types{DType::bf16, DType::fp32}));

std::string variant_name(const ::testing::TestParamInfo<Variant>& param) {
  const auto [scheme, types] = param.param;
  return scheme_test_name({scheme, param.index}) + "_" + dtype_name(types.dtype) + "_reduce_" +
         dtype_name(types.reduce);
}

class NoAllocation : public ::testing::TestWithParam<Variant> {};

TEST_P(NoAllocation, ForwardAndBackwardAllocateNothingOfTheirOwn) {
  const auto [scheme, types] = GetParam();
  OneRankModel m(scheme, 32, 4, 16, Activation::gelu, types.dtype, types.reduce);
  auto pass = [&] {
    m.mlp->forward(m.x);
    if (m.mlp->has_backward()) m.mlp->backward(m.dy);
  };
  pass();  // libraries may set up what they keep on first use
  start_counting();
  pass();
  counting = false;
  EXPECT_EQ(ours, 0) << scheme_name(scheme) << ": " << ours_bytes << " bytes, while the "
                     << gemm_backend() << " and MPI calls made " << libraries << " allocations";
}

class WorkspaceAccount : public ::testing::TestWithParam<Variant> {};

// Row counts on both sides of where a plan starts packing its weights (oneDNN's PackedSgemm
// path, up to 256 rows), and an H of one, whose products have a single column or row.
TEST_P(WorkspaceAccount, ThePlanIsExactlyWhatIsAllocated) {
  const auto [scheme, types] = GetParam();
  World world;
  for (const int hidden_size : {1, 48})
    for (const int seq_len : {8, 160})
      for (const bool backward : {false, true})
        for (const bool bias : {false, true}) {
          Config cfg = OneRankModel::options(hidden_size, 2, seq_len, Activation::swiglu,
                                             types.dtype, types.reduce);
          cfg.backward = backward;
          cfg.bias = bias;
          TpComm tp = scheme == Scheme::serial ? TpComm::group_of_one(world) : TpComm(world, 1);
          const WorkspacePlan plan = scheme_plan(scheme, cfg, tp, OneRankModel::kOverlapChunks);
          start_counting();
          {
            Workspace ws(plan);
            make_scheme(ws, scheme, cfg, tp, OneRankModel::kOverlapChunks);
            counting = false;
            EXPECT_EQ(ws.plan().bytes, plan.bytes) << "the real build took what the plan said";
          }
          const std::string what = std::string(scheme_name(scheme)) + " " +
                                   dtype_name(types.dtype) + " -H " + std::to_string(hidden_size) +
                                   " -s " + std::to_string(seq_len) +
                                   (backward ? " --backward" : "") + (bias ? " --bias" : "");
          EXPECT_EQ(ours, 1) << what << ": one allocation, the workspace";
          EXPECT_EQ(ours_bytes, long(std::max<std::size_t>(plan.total(), Workspace::kAlignment)))
              << what;
        }
}

INSTANTIATE_TEST_SUITE_P(EveryScheme, WorkspaceAccount, kVariants, variant_name);
INSTANTIATE_TEST_SUITE_P(EveryScheme, NoAllocation, kVariants, variant_name);
