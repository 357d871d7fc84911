// A scheme built for a world of one rank, with every option on, and its inputs: what the
// unit tests that run real forward and backward passes start from. It is built as the program
// builds it: planned on a planning workspace, then made in one allocation of that plan. The
// serial baseline gets a group of one, as in the program.
#pragma once

#include <algorithm>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "tp_mlp/comm.hpp"
#include "tp_mlp/config.hpp"
#include "tp_mlp/init.hpp"
#include "tp_mlp/mlp.hpp"
#include "tp_mlp/workspace.hpp"

namespace tp_mlp {

// A workspace holding what `build` builds in it, built as the program builds: on a planning
// workspace first, then for real in one allocation of that plan. `build` keeps what it needs
// of what it built (the second time is the real one).
template <typename Build>
std::unique_ptr<Workspace> build_planned(Build build) {
  Workspace planning;
  build(planning);
  auto ws = std::make_unique<Workspace>(planning.plan());
  build(*ws);
  return ws;
}

// What make_scheme will take from a workspace, found by building it on a planning one.
inline WorkspacePlan scheme_plan(Scheme scheme, const Config& cfg, TpComm& tp, int chunks) {
  Workspace planning;
  make_scheme(planning, scheme, cfg, tp, chunks);
  return planning.plan();
}

struct OneRankModel {
  static constexpr int kOverlapChunks = 3;  // uneven, for megatron-overlap
  Config cfg;
  World world;
  TpComm tp;
  Workspace ws;
  MlpScheme* mlp;
  Matrix x, dy;  // [tokens, H]

  OneRankModel(Scheme scheme, int hidden_size, int batch_size, int seq_len,
               Activation activation = Activation::gelu, DType dtype = DType::fp32,
               DType reduce = DType::fp32)
      : cfg(options(hidden_size, batch_size, seq_len, activation, dtype, reduce)),
        tp(scheme == Scheme::serial ? TpComm::group_of_one(world) : TpComm(world, 1)),
        ws(scheme_plan(scheme, cfg, tp, kOverlapChunks)),
        mlp(&make_scheme(ws, scheme, cfg, tp, kOverlapChunks)),
        x(cfg.tokens(), cfg.hidden_size),
        dy(cfg.tokens(), cfg.hidden_size) {
    fill_block(x, master_input(cfg), cfg.seed, 0, 0);
    fill_block(dy, master_grad_output(cfg), cfg.seed, 0, 0);
  }

  static Config options(int hidden_size, int batch_size, int seq_len, Activation activation,
                        DType dtype, DType reduce) {
    Config c;
    c.tp_size = 1;
    c.activation = activation;
    c.dtype = dtype;
    c.reduce_dtype = reduce;
    c.hidden_size = hidden_size;
    c.batch_size = batch_size;
    c.seq_len = seq_len;
    c.backward = c.bias = c.sequence_parallel = c.overlap = c.invariant = true;
    return c;
  }
};

// gtest's name for a parameter: the scheme's, as an identifier ("megatron_sp").
inline std::string scheme_test_name(const ::testing::TestParamInfo<Scheme>& info) {
  std::string name = scheme_name(info.param);
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

}  // namespace tp_mlp
