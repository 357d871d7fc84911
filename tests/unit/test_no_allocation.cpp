// Proof that a forward and backward pass allocate nothing: malloc and friends are counted
// (operator new goes through malloc) while every scheme runs, after one warm-up pass. The
// MPI library may allocate inside a collective (Open MPI's reduce-scatter does); what the
// same collectives allocate on their own is measured and is all a pass may allocate.
// The same counter, summing bytes, checks that each scheme's own account of what its
// constructor allocates (scheme_bytes, which the memory check trusts) is what it allocates.
//
// Built with Eigen's GEMM nothing else may allocate. oneDNN's dnnl_sgemm takes no workspace
// argument and mallocs one per call inside the library, so with that backend the test is
// skipped; the eigen preset, which CI runs, proves the rest of the code allocation-free.
#include <cerrno>
#include <cstring>
#include <tuple>

#include <gtest/gtest.h>

#include "one_rank_model.hpp"
#include "tp_mlp/analysis.hpp"
#include "tp_mlp/bench.hpp"
#include "tp_mlp/gemm.hpp"

// glibc's own allocator, under its own (reserved) names, which the counters below call.
extern "C" {
void* __libc_malloc(std::size_t);                 // NOLINT(bugprone-reserved-identifier)
void* __libc_calloc(std::size_t, std::size_t);    // NOLINT(bugprone-reserved-identifier)
void* __libc_realloc(void*, std::size_t);         // NOLINT(bugprone-reserved-identifier)
void* __libc_memalign(std::size_t, std::size_t);  // NOLINT(bugprone-reserved-identifier)
}

namespace {
bool counting = false;
long allocations = 0;
long allocated_bytes = 0;
void note(std::size_t bytes) {
  if (!counting) return;
  ++allocations;
  allocated_bytes += long(bytes);
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

namespace {

// Allocations made by MPI itself for the collectives of one forward and backward pass.
long mpi_allocations(Scheme scheme, const Config& cfg, TpComm& tp) {
  std::vector<CollectiveCall> calls = comm_formula(scheme, cfg, Direction::forward);
  for (const auto& c : comm_formula(scheme, cfg, Direction::backward)) calls.push_back(c);
  CollectiveReplay replay(calls, tp);
  replay.run();
  allocations = 0;
  counting = true;
  replay.run();
  counting = false;
  return allocations;
}

}  // namespace

// Every scheme, in fp32 and in bf16 with either reduce dtype (an fp32 model is never reduced
// in bf16: config.cpp refuses it).
struct Types {
  DType dtype, reduce;
};
using Variant = std::tuple<Scheme, Types>;
const auto kVariants = ::testing::Combine(
    ::testing::Values(Scheme::megatron, Scheme::megatron_sp, Scheme::megatron_overlap,
                      Scheme::naive, Scheme::serial),
    ::testing::Values(Types{DType::fp32, DType::fp32}, Types{DType::bf16, DType::bf16},
                      Types{DType::bf16, DType::fp32}));

std::string variant_name(const ::testing::TestParamInfo<Variant>& param) {
  const auto [scheme, types] = param.param;
  return scheme_test_name({scheme, param.index}) + "_" + dtype_name(types.dtype) + "_reduce_" +
         dtype_name(types.reduce);
}

bool widened_bf16() { return std::strncmp(bf16_gemm_implementation(), "widened", 7) == 0; }

class NoAllocation : public ::testing::TestWithParam<Variant> {};

TEST_P(NoAllocation, ForwardAndBackwardAllocateNothing) {
  if (std::strncmp(gemm_backend(), "Eigen", 5) != 0)
    GTEST_SKIP() << gemm_backend() << " allocates its own GEMM workspace; see the eigen preset";
  const auto [scheme, types] = GetParam();
  OneRankModel m(scheme, 32, 4, 16, Activation::gelu, types.dtype, types.reduce);
  auto pass = [&] {
    m.mlp->forward(m.x);
    if (m.mlp->has_backward()) m.mlp->backward(m.dy);
  };
  const long by_mpi = mpi_allocations(scheme, m.cfg, m.tp);
  pass();  // MPI may set up its buffers on first use
  allocations = 0;
  counting = true;
  pass();
  counting = false;
  EXPECT_EQ(allocations, by_mpi) << scheme_name(scheme) << ": MPI alone allocates " << by_mpi;
}

// Eigen pads each aligned allocation by up to its alignment, which scheme_bytes (tensor
// bytes) leaves out.
constexpr long kAlignmentPadding = EIGEN_MAX_ALIGN_BYTES;

class SchemeBytesAccount : public ::testing::TestWithParam<Variant> {};

TEST_P(SchemeBytesAccount, CoversWhatTheConstructorAllocates) {
  const auto [scheme, types] = GetParam();
  if (types.dtype == DType::bf16 && !widened_bf16())
    GTEST_SKIP() << bf16_gemm_implementation() << " allocates inside the library";
  constexpr int kBatch = 2, kSeqLen = 8;
  if (types.dtype == DType::fp32 && PackedSgemm::pays(long{kBatch} * kSeqLen))
    GTEST_SKIP() << gemm_backend() << "'s packed fp32 product allocates inside the library";
  World world;
  for (bool backward : {false, true})
    for (bool bias : {false, true}) {
      Config cfg;
      cfg.tp_size = 1;
      cfg.hidden_size = 48;
      cfg.batch_size = kBatch;
      cfg.seq_len = kSeqLen;
      cfg.backward = backward;
      cfg.bias = bias;
      cfg.sequence_parallel = cfg.overlap = true;
      cfg.overlap_chunks = OneRankModel::kOverlapChunks;
      cfg.dtype = types.dtype;
      cfg.reduce_dtype = types.reduce;
      TpComm tp = scheme == Scheme::serial ? TpComm::group_of_one(world) : TpComm(world, 1);
      allocations = allocated_bytes = 0;
      counting = true;
      const std::unique_ptr<MlpScheme> mlp = make_scheme(scheme, cfg, tp);
      counting = false;
      const double estimate = scheme_bytes(scheme, cfg).total();
      const std::string what = std::string(scheme_name(scheme)) + " " + dtype_name(types.dtype) +
                               (backward ? " --backward" : "") + (bias ? " --bias" : "");
      EXPECT_LE(double(allocated_bytes), estimate + double(allocations * kAlignmentPadding))
          << what;
      EXPECT_GE(double(allocated_bytes), estimate) << what << ": the account claims more";
    }
}

INSTANTIATE_TEST_SUITE_P(EveryScheme, SchemeBytesAccount, kVariants, variant_name);
INSTANTIATE_TEST_SUITE_P(EveryScheme, NoAllocation, kVariants, variant_name);
