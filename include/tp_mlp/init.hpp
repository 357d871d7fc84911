// init: every number the model starts from: the master weights and the input.
//
// Each element is a pure function of (seed, tensor, row, column). SplitMix64 is
// counter-based: its i-th output is mix(key + i·γ), so element i is computed directly,
// without running a generator through elements 0..i-1. Hence any rank can produce exactly
// its own slice of a master weight, and the reference can regenerate any block, while no
// process ever holds a full matrix it does not need. The model is therefore the same at
// every TP size, as in Megatron-LM's CPU initialisation of one master weight that is then
// split. (The reference script instead draws xavier per shard and divides W2 by T, so its
// model changes with T.)
#pragma once

#include <cstdint>

#include "tp_mlp/bf16.hpp"
#include "tp_mlp/config.hpp"
#include "tp_mlp/matrix.hpp"
#include "tp_mlp/partition.hpp"

namespace tp_mlp {

// A full ("master") tensor that is never materialised, only sampled.
struct MasterTensor {
  enum class Distribution { uniform, standard_normal };
  std::uint64_t stream;  // keeps tensors independent of each other under one seed
  Distribution distribution;
  long rows;
  long cols;
  double bound = 0;  // uniform: U(centre - bound, centre + bound)
  double centre = 0;
  bool bf16 = false;  // values rounded to bf16, as a --dtype bf16 model holds them
};

MasterTensor master_w1(const Config& cfg);  // [H, F], xavier-uniform (SwiGLU's gate)
MasterTensor master_w3(const Config& cfg);  // [H, F], xavier-uniform (SwiGLU's up)
MasterTensor master_w2(const Config& cfg);  // [F, H], xavier-uniform
MasterTensor master_b1(const Config& cfg);  // [1, F], like torch.nn.Linear's bias
MasterTensor master_b3(const Config& cfg);  // [1, F]
MasterTensor master_b2(const Config& cfg);  // [1, H]
// The attention block's (--block attention): N query heads and K KV heads of d features.
MasterTensor master_wq(const Config& cfg);  // [H, N·d], xavier-uniform
MasterTensor master_wk(const Config& cfg);  // [H, K·d], xavier-uniform
MasterTensor master_wv(const Config& cfg);  // [H, K·d], xavier-uniform
MasterTensor master_wo(const Config& cfg);  // [N·d, H], xavier-uniform
MasterTensor master_bq(const Config& cfg);  // [1, N·d], like torch.nn.Linear's bias
MasterTensor master_bk(const Config& cfg);  // [1, K·d]
MasterTensor master_bv(const Config& cfg);  // [1, K·d]
MasterTensor master_bo(const Config& cfg);  // [1, H]
// The layer's norms (--block layer), Norm1 before attention and Norm2 before the MLP: weights
// U(0.5, 1.5) and LayerNorm's biases U(-0.5, 0.5), away from the 1 and 0 they usually start
// at, so that a gradient that ignored them would show.
MasterTensor master_norm_weight(const Config& cfg, int norm);  // [1, H], norm 1 or 2
MasterTensor master_norm_bias(const Config& cfg, int norm);    // [1, H]
MasterTensor master_input(const Config& cfg);                  // [tokens, H], N(0, 1)
MasterTensor master_grad_output(const Config& cfg);            // dY [tokens, H], N(0, 1)

float master_value(const MasterTensor& t, std::uint64_t seed, long row, long col);

// out(r, c) = master(row0 + r, col0 + c) for the block of out's size; `out` may be a view.
void fill_block(MatrixRef out, const MasterTensor& t, std::uint64_t seed, long row0, long col0);
void fill_block(MatrixDRef out, const MasterTensor& t, std::uint64_t seed, long row0, long col0);
void fill_block(MatrixBRef out, const MasterTensor& t, std::uint64_t seed, long row0, long col0);

// The block rows x cols of a master tensor, as a new matrix: what a rank's shard starts from.
Matrix master_block(const MasterTensor& t, std::uint64_t seed, Block rows, Block cols);

// The first layer's projections, in the order their blocks sit side by side: W1 (SwiGLU's
// gate), then for SwiGLU W3 (up); or their biases, b1 then b3.
enum class LayerPart { weight, bias };
MasterTensor master_first_layer(const Config& cfg, LayerPart part, int projection);

// out [rows, p·cols] = the same block of each projection, side by side: [W1 | W3] (or
// [b1 | b3] with one row), as Megatron-LM fuses the gate and up projections per rank,
// [gate_r | up_r], so that one GEMM computes both.
void fill_first_layer(MatrixRef out, const Config& cfg, LayerPart part, Block rows, Block cols);
void fill_first_layer(MatrixDRef out, const Config& cfg, LayerPart part, Block rows, Block cols);
void fill_first_layer(MatrixBRef out, const Config& cfg, LayerPart part, Block rows, Block cols);

// out [rows, (nq + 2·nkv)·d] = the query heads' columns of Wq, then the KV heads' of Wk and
// of Wv, side by side (or of bq, bk, bv with one row): one rank's fused QKV projection, as
// Megatron-LM fuses it, for its heads.
void fill_qkv(MatrixRef out, const Config& cfg, LayerPart part, Block rows, Block query_heads,
              Block kv_heads);
void fill_qkv(MatrixDRef out, const Config& cfg, LayerPart part, Block rows, Block query_heads,
              Block kv_heads);
void fill_qkv(MatrixBRef out, const Config& cfg, LayerPart part, Block rows, Block query_heads,
              Block kv_heads);

}  // namespace tp_mlp
