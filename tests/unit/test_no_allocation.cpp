// Proof that a forward and backward pass allocate nothing: malloc and friends are counted
// (operator new goes through malloc) while every scheme runs, after one warm-up pass. The
// MPI library may allocate inside a collective (Open MPI's reduce-scatter does); what the
// same collectives allocate on their own is measured and is all a pass may allocate.
//
// Built with Eigen's GEMM nothing else may allocate. oneDNN's dnnl_sgemm takes no workspace
// argument and mallocs one per call inside the library, so with that backend the test is
// skipped; the eigen preset, which CI runs, proves the rest of the code allocation-free.
#include <cerrno>
#include <cstring>

#include <gtest/gtest.h>

#include "one_rank_model.hpp"
#include "tp_mlp/analysis.hpp"
#include "tp_mlp/bench.hpp"
#include "tp_mlp/gemm.hpp"

extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
}

namespace {
bool counting = false;
long allocations = 0;
void note() {
  if (counting) ++allocations;
}
}  // namespace

extern "C" {
void* malloc(std::size_t n) { return note(), __libc_malloc(n); }
void* calloc(std::size_t n, std::size_t size) { return note(), __libc_calloc(n, size); }
void* realloc(void* p, std::size_t n) { return note(), __libc_realloc(p, n); }
void* aligned_alloc(std::size_t alignment, std::size_t n) { return note(), __libc_memalign(alignment, n); }
void* memalign(std::size_t alignment, std::size_t n) { return note(), __libc_memalign(alignment, n); }
int posix_memalign(void** p, std::size_t alignment, std::size_t n) {
  note();
  *p = __libc_memalign(alignment, n);
  return *p ? 0 : ENOMEM;
}
}

using namespace tp_mlp;

namespace {

// Allocations made by MPI itself for the collectives of one forward and backward pass.
long mpi_allocations(Scheme scheme, const Config& cfg, TpComm& tp) {
  std::vector<CollectiveCall> calls = comm_formula(scheme, cfg, Direction::forward).calls;
  for (const auto& c : comm_formula(scheme, cfg, Direction::backward).calls) calls.push_back(c);
  CollectiveReplay replay(calls, tp);
  replay.run();
  allocations = 0;
  counting = true;
  replay.run();
  counting = false;
  return allocations;
}

}  // namespace

class NoAllocation : public ::testing::TestWithParam<Scheme> {};

TEST_P(NoAllocation, ForwardAndBackwardAllocateNothing) {
  if (std::strncmp(gemm_backend(), "Eigen", 5) != 0)
    GTEST_SKIP() << gemm_backend() << " allocates its own GEMM workspace; see the eigen preset";
  OneRankModel m(GetParam(), 32, 4, 16);
  auto pass = [&] {
    m.mlp->forward(m.x);
    if (m.mlp->has_backward()) m.mlp->backward(m.dy);
  };
  const long by_mpi = mpi_allocations(GetParam(), m.cfg, m.tp);
  pass();  // MPI may set up its buffers on first use
  allocations = 0;
  counting = true;
  pass();
  counting = false;
  EXPECT_EQ(allocations, by_mpi) << scheme_name(GetParam()) << ": MPI alone allocates " << by_mpi;
}

INSTANTIATE_TEST_SUITE_P(EveryScheme, NoAllocation,
                         ::testing::Values(Scheme::megatron, Scheme::megatron_sp, Scheme::naive,
                                           Scheme::serial),
                         scheme_test_name);
