// models: the shapes of well-known models (--model), each as its published configuration gives
// it, for a run at a real model's sizes. A preset fills only what the command line leaves
// unset: an explicit flag overrides it.
#pragma once

#include <string>
#include <vector>

#include "tp_mlp/config.hpp"

namespace tp_mlp {

struct ModelPreset {
  std::string name;           // as --model spells it
  int hidden_size;            // H
  long ffn_hidden_size;       // F
  int num_heads;              // N
  int num_kv_heads;           // K
  Activation activation;      // gelu or swiglu
  NormKind norm;              // LayerNorm or RMSNorm
  double rope_theta;          // RoPE's base (GPT-2 has none: see the README)
  const char* configuration;  // where the numbers come from
};

// Every preset, in --help's order.
const std::vector<ModelPreset>& model_presets();
// The preset named `name`, or null.
const ModelPreset* find_model(const std::string& name);

}  // namespace tp_mlp
