// partition: how a length is dealt out in contiguous blocks, one per rank, sizes differing by
// at most one. Shards of the 4H dimension, the naive scheme's split of H, and the token
// blocks of sequence parallelism and verification all use this one rule, so that every part
// of the program agrees on who holds what.
#pragma once

#include <algorithm>

namespace tp_mlp {

struct Block {
  long first = 0;
  long count = 0;
  long end() const { return first + count; }
};

// Block `index` of `parts`: the first length % parts blocks hold one element more.
inline Block block_of(long length, int parts, int index) {
  const long base = length / parts, extra = length % parts;
  return {index * base + std::min<long>(index, extra), base + (index < extra ? 1 : 0)};
}

}  // namespace tp_mlp
