// config: what a run is: the flags' values once read (cli.hpp) and checked (validate.hpp), never
// changed after; what is decided while running lives in the run's plan (run_plan.hpp). Knows
// nothing of MPI or Eigen.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tp_mlp/watchdog.hpp"

namespace tp_mlp {

// The ways this program computes the same MLP (see mlp.hpp). With --invariant, the megatron
// family and serial also run as *-inv: the same wiring, every sum over F formed in an order that
// does not depend on the TP size (invariant_blocking.hpp).
enum class Scheme {
  megatron,
  megatron_sp,
  megatron_overlap,
  megatron_inv,
  megatron_sp_inv,
  megatron_overlap_inv,
  naive,
  serial,
  serial_inv
};
// Whether `scheme` is an invariant one, and the plain scheme it is wired like.
bool is_invariant(Scheme scheme);
Scheme plain_of(Scheme scheme);
// What --scheme selects; megatron-sp comes with --sequence-parallel wherever megatron runs.
enum class SchemeChoice { all, megatron, naive, serial };
// What the program computes: the MLP block (the reference script's), the attention block (split
// by heads), or a whole pre-norm transformer layer of both, h = x + Attention(Norm1(x)),
// y = h + MLP(Norm2(h)).
enum class BlockKind { mlp, attention, layer };

// The layer's normalisation: RMSNorm (LLaMA's) or LayerNorm (GPT-2's).
enum class NormKind { rms, layer };

// The MLP's nonlinearity: the reference script's GeLU(X·W1)·W2, or LLaMA's gated
// (SiLU(X·W1) ⊙ X·W3)·W2, whose gate W1 and up projection W3 are both [H, F].
enum class Activation { gelu, swiglu };

// The element type of the weights, activations and GEMM inputs (GEMMs accumulate in fp32 either
// way), and of the partial sums a reduction moves.
enum class DType { fp32, bf16 };

// A mistake to plant in the megatron scheme, to watch verification catch it (faults.hpp).
enum class Fault {
  none,
  missing_partial_sum,
  duplicate_shard,
  bias_on_every_rank,
  w2_over_t,
  gate_up_split,
  one_ulp,  // --invariant: one element of one block's partial sum off by one ulp
  // The attention block's (--block attention):
  kv_grad_not_summed,  // a replicated KV head's weight gradients left as each rank's part
  wrong_kv_head,       // a rank's query heads paired with the KV head after theirs
  // The layer's (--block layer --sequence-parallel):
  norm_grad_not_summed  // the norms' weight gradients left as each rank's tokens' part
};
// Whether `fault` is a mistake of the attention block's, or of the layer's own (else of the
// MLP block's, or none).
bool is_attention_fault(Fault fault);
bool is_layer_fault(Fault fault);

// The FFN width F by default: 4H for GeLU; for SwiGLU, LLaMA's rule, 2/3·4H rounded up to a
// multiple of 256 (H 4096 -> 11008), which keeps the parameters near GeLU's 8H².
long default_ffn_hidden_size(Activation activation, long hidden_size);
// Megatron-LM's rule for SwiGLU, for comparison: 2/3·4H rounded down to a multiple of 64
// (H 4096 -> 10880).
long megatron_ffn_hidden_size(long hidden_size);

struct Config {
  BlockKind block = BlockKind::mlp;
  int tp_size = 4;       // ranks in one tensor-parallel group (T)
  int hidden_size = 64;  // H
  int batch_size = 4;    // b
  int seq_len = 16;      // s; tokens = b * s
  int iterations = 100;  // timed forward passes
  int warmup = 10;       // untimed forward passes before them
  std::uint64_t seed = 42;
  SchemeChoice scheme_choice = SchemeChoice::all;
  bool sequence_parallel = false;  // also run megatron-sp
  bool overlap = false;            // also run megatron-overlap
  int overlap_chunks = 0;          // its token chunks; 0: chosen by measuring the link
  bool invariant = false;          // also run the *-inv schemes: the same bits at every T
  bool backward = false;           // also the backward pass (megatron, megatron-sp, serial)
  bool bias = false;               // the linears have biases b1 (b3) [F] and b2 [H]
  Activation activation = Activation::gelu;
  long ffn_hidden_size = 0;          // F; 0 for the activation's default
  int num_heads = 0;                 // N, attention's query heads; 0: H/64, at least 1
  int num_kv_heads = 0;              // K, its key and value heads (K < N: grouped-query); 0: N
  std::optional<double> rope_theta;  // the rotary embedding's base; unset: 10000 (LLaMA's)
  std::optional<NormKind> norm;      // unset: RMSNorm with SwiGLU, LayerNorm with GeLU
  std::string model;                 // --model: a well-known model's shapes; empty: none
  DType dtype = DType::fp32;
  std::optional<DType> reduce_dtype;  // --reduce-dtype; unset: the --dtype, as in Megatron-LM
  Fault fault = Fault::none;
  int timeout = kDefaultTimeoutSeconds;  // any rank's longest wait in one MPI call, seconds
  std::string json_path;                 // empty: no JSON report
  std::string tensors_dir;               // empty: no .npy files

  long tokens() const { return long(batch_size) * seq_len; }
  // F, the FFN's intermediate width: --ffn-hidden-size, or the activation's default.
  long intermediate_size() const {
    return ffn_hidden_size > 0 ? ffn_hidden_size : default_ffn_hidden_size(activation, hidden_size);
  }
  // Projections of X that the activation takes: W1 for GeLU; W1 (gate) and W3 (up) for SwiGLU.
  int projections() const { return activation == Activation::swiglu ? 2 : 1; }
  DType reduction() const { return reduce_dtype.value_or(dtype); }
  long heads() const { return num_heads > 0 ? num_heads : std::max(1, hidden_size / 64); }
  long kv_heads() const { return num_kv_heads > 0 ? num_kv_heads : heads(); }
  long head_size() const { return hidden_size / heads(); }  // d
  double rope_base() const { return rope_theta.value_or(10000); }
  NormKind norm_kind() const {
    return norm.value_or(activation == Activation::swiglu ? NormKind::rms : NormKind::layer);
  }
  // The layer's norms' parameter tensors, [1, H] each: two weights, and LayerNorm's two biases.
  long norm_tensors() const { return norm_kind() == NormKind::layer ? 4 : 2; }
  std::vector<Scheme> schemes() const;  // what the flags select, in report order
  bool runs(Scheme scheme) const;       // whether schemes() holds it
};

const char* scheme_name(Scheme scheme);
const char* choice_name(SchemeChoice choice);        // as spelled on the command line
const char* activation_name(Activation activation);  // "gelu", "swiglu"
const char* fault_name(Fault fault);                 // "w2-over-t", ...
const char* dtype_name(DType dtype);                 // "fp32", "bf16"
const char* block_name(BlockKind block);             // "mlp", "attention", "layer"
const char* norm_name(NormKind norm);                // "rmsnorm", "layernorm"
long dtype_bytes(DType dtype);

// Every value of a choice with the name the command line and the report use, in --help's order.
template <typename E>
using NamedValues = std::vector<std::pair<std::string, E>>;
const NamedValues<SchemeChoice>& scheme_choices();
const NamedValues<Activation>& activations();
const NamedValues<DType>& dtypes();
const NamedValues<Fault>& faults();
const NamedValues<BlockKind>& blocks();
const NamedValues<NormKind>& norms();

}  // namespace tp_mlp
