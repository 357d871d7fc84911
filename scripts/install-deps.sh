#!/usr/bin/env bash
# Installs the Debian 12 packages tp_mlp builds, tests and plots with; skips what is there.
set -euo pipefail

packages=(
  cmake g++ make                   # build
  libopenmpi-dev openmpi-bin       # MPI::MPI_CXX and mpirun
  libmpich-dev mpich               # the second MPI the tests run against (preset mpich)
  libeigen3-dev                    # Eigen3::Eigen
  libcli11-dev                     # CLI11::CLI11
  nlohmann-json3-dev               # nlohmann_json::nlohmann_json
  libdnnl-dev                      # oneDNN, the fast GEMM backend (Eigen is the fallback)
  ocl-icd-opencl-dev               # dnnl's CMake package requires OpenCL, only recommended
  libgtest-dev                     # GTest::gtest_main
  clang-format clang-tidy          # the style and lint tests (release preset)
  python3 python3-numpy            # the MPI tests check saved tensors with NumPy
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "Installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
