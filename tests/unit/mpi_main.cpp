// main() for the tests that build real schemes: they need MPI, as a world of one rank, or
// under mpiexec as several.
#include <gtest/gtest.h>

#include "tp_mlp/comm.hpp"
#include "tp_mlp/gemm.hpp"

int main(int argc, char** argv) {
  const tp_mlp::MpiSession mpi(&argc, &argv);
  tp_mlp::gemm_use_one_thread();
  ::testing::InitGoogleTest(&argc, argv);
  // Under mpiexec every rank runs every test; rank 0 speaks for them.
  if (!tp_mlp::World().is_root()) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  return RUN_ALL_TESTS();
}
