// invariant_blocking: the block and tile sizes, from F and the tokens alone (see the header).
#include "tp_mlp/invariant_blocking.hpp"

#include <algorithm>

namespace tp_mlp {
namespace {

constexpr long kBlocksInF = 8;  // B about F / 8
constexpr long kNarrowest = 8, kWidest = 512;

// Rows per product: 256 where the padding it needs stays under 1/16 of the tokens, else 128,
// else 64 (measured at H 1024, 1024 tokens, T = 1: 256 rows ran the invariant forward 2-4 %
// faster than 64; fewer rows lose more to each call's fixed costs).
constexpr long kRowTiles[] = {256, 128};
constexpr long kFewestRows = 64;
constexpr long kWastedAtMost = 16;  // a 1/16 of the tokens in padding

long row_tile_for(long tokens) {
  for (long rows : kRowTiles)
    if ((tokens + rows - 1) / rows * rows - tokens <= tokens / kWastedAtMost) return rows;
  return kFewestRows;
}

long power_of_two_at_most(long n) {
  long p = 1;
  while (2 * p <= n) p *= 2;
  return p;
}

}  // namespace

InvariantBlocking InvariantBlocking::of(const Config& cfg) {
  const long ffn = cfg.intermediate_size(), tokens = cfg.tokens();
  InvariantBlocking b;
  b.block_width =
      std::clamp(power_of_two_at_most(std::max(1L, ffn / kBlocksInF)), kNarrowest, kWidest);
  b.blocks = (ffn + b.block_width - 1) / b.block_width;
  b.row_tile = std::min(row_tile_for(tokens), tokens);
  b.padded_tokens = (tokens + b.row_tile - 1) / b.row_tile * b.row_tile;
  return b;
}

}  // namespace tp_mlp
