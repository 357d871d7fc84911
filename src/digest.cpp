// digest: SplitMix64's mix of each element's place and bits, summed (see digest.hpp).
#include "tp_mlp/digest.hpp"

#include <cstring>

#include "tp_mlp/splitmix.hpp"

namespace tp_mlp {

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
