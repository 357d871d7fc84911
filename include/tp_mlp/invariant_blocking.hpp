// invariant_blocking: how an --invariant scheme cuts its work so that every output and gradient
// has the same bits at every TP size, uneven shards included.
//
// A GEMM kernel may sum an element's terms in an order that depends on the whole call: its row
// and column counts, and its operands' strides (measured: oneDNN's sgemm changes bits with the
// row count, its fp32 brgemm with the strides of A and C, its bf16 brgemm with the shape; see
// the README). So every product of an invariant scheme is a call of the same shape and strides
// at every T: F is cut into fixed blocks of B columns, each rank holds whole blocks, each block
// is a dense matrix of its own, and every call runs R rows (the tokens padded to a multiple of
// R with zero rows). A sum over F (Y forward, dX backward) is then a sum of per-block partial
// sums, the same partials at every T, combined exactly (exact_sum.hpp), so that which rank holds
// a block no longer matters.
#pragma once

#include "tp_mlp/config.hpp"
#include "tp_mlp/partition.hpp"

namespace tp_mlp {

struct InvariantBlocking {
  long block_width = 1;    // B: F's columns per block (the last block may hold fewer)
  long blocks = 1;         // ⌈F / B⌉
  long row_tile = 1;       // R: the rows of every product
  long padded_tokens = 1;  // the tokens rounded up to a multiple of R

  // B from F alone: as wide as 1/8 of F (few blocks: every block's partial sum is rounded onto
  // the exact sum's grid, a pass over [tokens, H] each), a power of two from 8 to 512 (wider
  // only lengthens the shards' imbalance at uneven T). R from the tokens alone: 256, 128 or 64
  // rows, the most whose padding stays under 1/16 of the tokens, or all of them if fewer.
  static InvariantBlocking of(const Config& cfg);

  Block columns(long block, long ffn) const {  // global block `block`'s columns of F
    const long first = block * block_width;
    return {first, std::min(block_width, ffn - first)};
  }
  // The blocks, and so the columns of F, that rank `rank` of `tp_size` holds: whole blocks,
  // counts differing by at most one.
  Block blocks_of(int tp_size, int rank) const { return block_of(blocks, tp_size, rank); }
  Block columns_of(int tp_size, int rank, long ffn) const {
    const Block held = blocks_of(tp_size, rank);
    if (held.count == 0) return {held.first * block_width, 0};
    const long first = held.first * block_width;
    return {first, columns(held.end() - 1, ffn).end() - first};
  }
  long tiles() const { return padded_tokens / row_tile; }
  // The rows of the whole tiles that cover rows [0, end): products run a tile at a time, so a
  // chunk of tokens (megatron-overlap-inv) computes every tile it touches, and the next chunk
  // only those not computed yet.
  long covered(long end) const { return (end + row_tile - 1) / row_tile * row_tile; }
};

}  // namespace tp_mlp
