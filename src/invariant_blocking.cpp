// invariant_blocking: the block and tile sizes, from F and the tokens alone (see the header).
#include "tp_mlp/invariant_blocking.hpp"

#include <algorithm>

namespace tp_mlp {
namespace {

constexpr long kBlocksInF = 8;  // B about F / 8
constexpr long kNarrowest = 8, kWidest = 512;
constexpr long kRowTile = 64;

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
  b.row_tile = std::min(kRowTile, tokens);
  b.padded_tokens = (tokens + b.row_tile - 1) / b.row_tile * b.row_tile;
  return b;
}

}  // namespace tp_mlp
