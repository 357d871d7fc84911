// main() for the unit tests that build real schemes: they need MPI, as a world of one rank.
#include <mpi.h>

#include <gtest/gtest.h>

#include "tp_mlp/gemm.hpp"

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  tp_mlp::gemm_use_one_thread();
  ::testing::InitGoogleTest(&argc, argv);
  const int result = RUN_ALL_TESTS();
  MPI_Finalize();
  return result;
}
