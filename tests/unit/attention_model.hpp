// The attention block's (or the layer's) scheme and its float64 reference, built as the program
// builds them (planned, then made in one allocation), with their inputs: what the tests that
// verify the attention block and the layer at a group of one and at two ranks start from.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "one_rank_model.hpp"
#include "tp_mlp/attention_verify.hpp"
#include "tp_mlp/layer_verify.hpp"

namespace tp_mlp {

// A tiny attention block with every option on: N heads of d features, K KV heads.
inline Config attention_config(int tp_size, int heads, int kv_heads, int head_size, int seq_len,
                               std::uint64_t seed) {
  Config c;
  c.block = BlockKind::attention;
  c.tp_size = tp_size;
  c.num_heads = heads;
  c.num_kv_heads = kv_heads;
  c.hidden_size = heads * head_size;
  c.batch_size = 2;
  c.seq_len = seq_len;
  c.backward = c.bias = true;
  c.seed = seed;
  return c;
}

// The same with its attention in a whole pre-norm layer: an F of 3 per head (uneven over most
// T), the activation and norm given.
inline Config layer_config(int tp_size, int heads, int kv_heads, int head_size, int seq_len,
                           std::uint64_t seed, Activation activation, NormKind norm) {
  Config c = attention_config(tp_size, heads, kv_heads, head_size, seq_len, seed);
  c.block = BlockKind::layer;
  c.activation = activation;
  c.norm = norm;
  c.ffn_hidden_size = 3L * heads;
  return c;
}

struct AttentionModel {
  Config cfg;
  World world;
  mutable TpComm tp;  // a collective changes its counters, not the model
  MlpScheme* scheme = nullptr;
  BlockReference* reference = nullptr;
  std::unique_ptr<Workspace> ws;
  Matrix x, dy;  // [tokens, H]

  // The serial baseline gets a group of one, as in the program; megatron cfg.tp_size ranks.
  AttentionModel(Scheme s, Config config)
      : cfg(std::move(config)),
        tp(s == Scheme::serial ? TpComm::group_of_one(world) : TpComm(world, cfg.tp_size)),
        x(cfg.tokens(), cfg.hidden_size),
        dy(cfg.tokens(), cfg.hidden_size) {
    ws = build_planned([&](Workspace& w) {
      scheme = &make_scheme(w, s, cfg, tp);
      if (cfg.block == BlockKind::layer)
        reference = &w.make<LayerReference>(w, cfg, Block{0, cfg.tokens()});
      else
        reference = &w.make<AttentionReference>(w, cfg);
    });
    fill_block(x, master_input(cfg), cfg.seed, 0, 0);
    fill_block(dy, master_grad_output(cfg), cfg.seed, 0, 0);
    reference->compute(x, dy);
  }

  // Y, then dX and every gradient, on the token rows the scheme holds (megatron-sp: its block).
  std::vector<Verification> verify() const {
    const Scheme s = scheme->scheme();
    const Block rows = scheme->tokens_here();
    std::vector<Verification> checks = {reference->verify_output(
        s, scheme->forward(x.middleRows(rows.first, rows.count)), rows, world)};
    const ConstMatrixRef dx = scheme->backward(dy.middleRows(rows.first, rows.count));
    for (const Verification& g : reference->verify_gradients(s, dx, rows, scheme, x, dy, world))
      checks.push_back(g);
    if (cfg.block != BlockKind::layer) return checks;
    // A layer's blocks, each from its own input: the stages whole, gathered from megatron-sp's
    // token blocks as the program gathers them (comparison.cpp).
    const LayerStages stages = scheme->layer_stages();
    std::vector<Matrix> whole;
    std::vector<Tensor<float>> views;
    whole.reserve(kStages);
    for (const std::optional<ConstMatrixRef>& piece : stages) {
      Matrix& all = whole.emplace_back(cfg.tokens(), cfg.hidden_size);
      if (piece->rows() == all.rows()) {
        all = *piece;
      } else {
        const Matrix contiguous = *piece;
        tp.all_gather_rows(contiguous.data(), all.data(), all.rows(), all.cols());
      }
      views.emplace_back(all.data(), all.rows(), all.cols());
    }
    for (const Verification& b : reference->verify_blocks(s, views, dy, scheme, world))
      checks.push_back(b);
    return checks;
  }
};

}  // namespace tp_mlp
