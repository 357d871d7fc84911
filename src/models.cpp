// models: the presets' numbers, each copied from the model's configuration file as published
// on the Hugging Face hub (see models.hpp).
#include "tp_mlp/models.hpp"

namespace tp_mlp {

const std::vector<ModelPreset>& model_presets() {
  static const std::vector<ModelPreset> presets = {
      // n_embd 768, n_head 12, n_inner 4 x 768; GeLU (GPT-2's tanh form: ours is exact), LayerNorm.
      {"gpt2", 768, 3072, 12, 12, Activation::gelu, NormKind::layer, 10000,
       "openai-community/gpt2 config.json"},
      {"llama3-8b", 4096, 14336, 32, 8, Activation::swiglu, NormKind::rms, 500000,
       "meta-llama/Meta-Llama-3-8B config.json"},
      {"llama3-70b", 8192, 28672, 64, 8, Activation::swiglu, NormKind::rms, 500000,
       "meta-llama/Meta-Llama-3-70B config.json"},
      {"mistral-7b", 4096, 14336, 32, 8, Activation::swiglu, NormKind::rms, 10000,
       "mistralai/Mistral-7B-v0.1 config.json"},
      {"qwen2.5-7b", 3584, 18944, 28, 4, Activation::swiglu, NormKind::rms, 1000000,
       "Qwen/Qwen2.5-7B config.json"},
  };
  return presets;
}

const ModelPreset* find_model(const std::string& name) {
  for (const ModelPreset& m : model_presets())
    if (m.name == name) return &m;
  return nullptr;
}

}  // namespace tp_mlp
