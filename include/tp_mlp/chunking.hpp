// chunking: how a pass cuts its token rows. Into chunks, for megatron-overlap, which sets each
// chunk's all-reduce off while the next chunk computes; and each chunk into blocks of GEMM rows,
// with a progress test between them so that the collective in flight keeps moving (Open MPI
// moves data only inside MPI calls). One chunk of one block is the plain pass.
#pragma once

#include <array>

#include "tp_mlp/partition.hpp"

namespace tp_mlp {

struct Chunking {
  long rows = 0;
  int chunks = 1;
  int blocks = 1;  // per chunk

  static Chunking whole(long rows) { return {rows, 1, 1}; }
  Block chunk(int c) const { return block_of(rows, chunks, c); }
  Block block(int c, int j) const {
    const Block in_chunk = block_of(chunk(c).count, blocks, j);
    return {chunk(c).first + in_chunk.first, in_chunk.count};
  }

  // The heights of the blocks, each once: chunks differ by at most a row and so do the blocks
  // of a chunk, so there are at most three, and a product planned for each height serves all.
  struct Heights {
    std::array<long, 3> values{};
    int count = 0;
    const long* begin() const { return values.data(); }
    const long* end() const { return values.data() + count; }
  };
  Heights heights() const {
    Heights h;
    for (int c = 0; c < chunks; ++c)
      for (int j = 0; j < blocks; ++j) {
        const long height = block(c, j).count;
        bool known = false;
        for (long seen : h) known = known || seen == height;
        if (!known) h.values[std::size_t(h.count++)] = height;
      }
    return h;
  }
};

}  // namespace tp_mlp
