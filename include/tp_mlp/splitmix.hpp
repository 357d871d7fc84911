// splitmix: SplitMix64's finaliser, which scatters every bit of a 64-bit value over all of them:
// what the initialiser's counter-based sampling and the tensors' digests are made of.
#pragma once

#include <cstdint>

namespace tp_mlp {

inline std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace tp_mlp
