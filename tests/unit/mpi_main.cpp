// main() for the tests that build real schemes: they need MPI, as a world of one rank, or
// under mpiexec as several.
#include <mpi.h>

#include <gtest/gtest.h>

#include "tp_mlp/gemm.hpp"

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  tp_mlp::gemm_use_one_thread();
  ::testing::InitGoogleTest(&argc, argv);
  // Under mpiexec every rank runs every test; rank 0 speaks for them.
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  const int result = RUN_ALL_TESTS();
  MPI_Finalize();
  return result;
}
