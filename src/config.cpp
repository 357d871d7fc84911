// config: what a run is, named: the values of each choice, and what follows from the flags.
#include "tp_mlp/config.hpp"

#include <algorithm>

namespace tp_mlp {
namespace {

// --scheme's values, in the order --help and its error message list them.
const NamedValues<SchemeChoice> kSchemeChoices = {{"megatron", SchemeChoice::megatron},
                                                  {"naive", SchemeChoice::naive},
                                                  {"serial", SchemeChoice::serial},
                                                  {"all", SchemeChoice::all}};

const NamedValues<Activation> kActivations = {{"gelu", Activation::gelu},
                                              {"swiglu", Activation::swiglu}};

const NamedValues<DType> kDTypes = {{"fp32", DType::fp32}, {"bf16", DType::bf16}};

const NamedValues<Fault> kFaults = {{"none", Fault::none},
                                    {"missing-partial-sum", Fault::missing_partial_sum},
                                    {"duplicate-shard", Fault::duplicate_shard},
                                    {"bias-on-every-rank", Fault::bias_on_every_rank},
                                    {"w2-over-t", Fault::w2_over_t},
                                    {"gate-up-split", Fault::gate_up_split},
                                    {"one-ulp", Fault::one_ulp},
                                    {"kv-grad-not-summed", Fault::kv_grad_not_summed},
                                    {"wrong-kv-head", Fault::wrong_kv_head},
                                    {"norm-grad-not-summed", Fault::norm_grad_not_summed}};

const NamedValues<BlockKind> kBlocks = {
    {"mlp", BlockKind::mlp}, {"attention", BlockKind::attention}, {"layer", BlockKind::layer}};

const NamedValues<NormKind> kNorms = {{"rmsnorm", NormKind::rms}, {"layernorm", NormKind::layer}};

template <typename E>
const char* name_in(const NamedValues<E>& names, E value) {
  for (const auto& [name, v] : names)
    if (v == value) return name.c_str();
  return "?";
}

}  // namespace

const NamedValues<SchemeChoice>& scheme_choices() { return kSchemeChoices; }
const NamedValues<BlockKind>& blocks() { return kBlocks; }
const NamedValues<NormKind>& norms() { return kNorms; }
const char* block_name(BlockKind block) { return name_in(kBlocks, block); }
const char* norm_name(NormKind norm) { return name_in(kNorms, norm); }
const NamedValues<Activation>& activations() { return kActivations; }
const NamedValues<DType>& dtypes() { return kDTypes; }
const NamedValues<Fault>& faults() { return kFaults; }

const char* scheme_name(Scheme scheme) {
  switch (scheme) {
    case Scheme::megatron: return "megatron";
    case Scheme::megatron_sp: return "megatron-sp";
    case Scheme::megatron_overlap: return "megatron-overlap";
    case Scheme::megatron_inv: return "megatron-inv";
    case Scheme::megatron_sp_inv: return "megatron-sp-inv";
    case Scheme::megatron_overlap_inv: return "megatron-overlap-inv";
    case Scheme::naive: return "naive";
    case Scheme::serial: return "serial";
    case Scheme::serial_inv: return "serial-inv";
  }
  return "?";
}

bool is_invariant(Scheme scheme) { return plain_of(scheme) != scheme; }

Scheme plain_of(Scheme scheme) {
  switch (scheme) {
    case Scheme::megatron_inv: return Scheme::megatron;
    case Scheme::megatron_sp_inv: return Scheme::megatron_sp;
    case Scheme::megatron_overlap_inv: return Scheme::megatron_overlap;
    case Scheme::serial_inv: return Scheme::serial;
    default: return scheme;
  }
}

const char* activation_name(Activation activation) { return name_in(kActivations, activation); }

const char* dtype_name(DType dtype) { return name_in(kDTypes, dtype); }

long dtype_bytes(DType dtype) { return dtype == DType::bf16 ? 2 : 4; }

const char* fault_name(Fault fault) { return name_in(kFaults, fault); }

bool is_layer_fault(Fault fault) { return fault == Fault::norm_grad_not_summed; }

bool is_attention_fault(Fault fault) {
  return fault == Fault::kv_grad_not_summed || fault == Fault::wrong_kv_head;
}

long default_ffn_hidden_size(Activation activation, long hidden_size) {
  if (activation == Activation::gelu) return 4 * hidden_size;
  constexpr long kMultipleOf = 256;  // LLaMA's multiple_of
  const long two_thirds = 2 * (4 * hidden_size) / 3;
  return kMultipleOf * ((two_thirds + kMultipleOf - 1) / kMultipleOf);
}

long megatron_ffn_hidden_size(long hidden_size) {
  constexpr long kMultipleOf = 64;
  return 2 * (4 * hidden_size) / 3 / kMultipleOf * kMultipleOf;
}

const char* choice_name(SchemeChoice choice) { return name_in(kSchemeChoices, choice); }

bool Config::runs(Scheme scheme) const {
  const std::vector<Scheme> selected = schemes();
  return std::find(selected.begin(), selected.end(), scheme) != selected.end();
}

std::vector<Scheme> Config::schemes() const {
  auto chosen = [this](SchemeChoice c) {
    return scheme_choice == SchemeChoice::all || scheme_choice == c;
  };
  std::vector<Scheme> schemes;
  const bool megatron = chosen(SchemeChoice::megatron), serial = chosen(SchemeChoice::serial);
  if (megatron) schemes.push_back(Scheme::megatron);
  if (megatron && sequence_parallel) schemes.push_back(Scheme::megatron_sp);
  if (megatron && overlap) schemes.push_back(Scheme::megatron_overlap);
  if (megatron && invariant) schemes.push_back(Scheme::megatron_inv);
  if (megatron && invariant && sequence_parallel) schemes.push_back(Scheme::megatron_sp_inv);
  if (megatron && invariant && overlap) schemes.push_back(Scheme::megatron_overlap_inv);
  // The attention block has no naive split (validate.cpp refuses --scheme naive with it).
  if (chosen(SchemeChoice::naive) && block == BlockKind::mlp) schemes.push_back(Scheme::naive);
  if (serial) schemes.push_back(Scheme::serial);
  if (serial && invariant) schemes.push_back(Scheme::serial_inv);
  return schemes;
}

}  // namespace tp_mlp
