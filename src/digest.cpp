// digest: SplitMix64's mix of each element's place and bits, summed (see digest.hpp).
#include "tp_mlp/digest.hpp"

#include <cstring>

namespace tp_mlp {
namespace {

std::uint64_t mix64(std::uint64_t z) {  // SplitMix64's finaliser
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

std::uint64_t digest(const ConstMatrixRef& piece, long first_row, long first_col, long cols) {
  std::uint64_t sum = 0;
  for (long r = 0; r < piece.rows(); ++r)
    for (long c = 0; c < piece.cols(); ++c) {
      std::uint32_t bits;
      const float value = piece(r, c);
      std::memcpy(&bits, &value, sizeof bits);
      const auto place = std::uint64_t((first_row + r) * cols + first_col + c);
      sum += mix64(mix64(place) ^ bits);  // wraps around: addition modulo 2^64
    }
  return sum;
}

}  // namespace tp_mlp
