// config: the command line, the ranges of its flags, and the checks that need the whole
// configuration (divisibility, rank count, sizes MPI can send). Knows nothing of MPI or Eigen,
// so every rank can run it on its own and reach the same verdict. (Memory is checked by
// memory.hpp, which asks each part of the program what it will allocate.)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tp_mlp {

// The ways this program computes the same MLP (see mlp.hpp).
enum class Scheme { megatron, megatron_sp, megatron_overlap, naive, serial };
// What --scheme selects; megatron-sp comes with --sequence-parallel wherever megatron runs.
enum class SchemeChoice { all, megatron, naive, serial };
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
  gate_up_split
};

// The FFN width F by default: 4H for GeLU; for SwiGLU, LLaMA's rule, 2/3·4H rounded up to a
// multiple of 256 (H 4096 -> 11008), which keeps the parameters near GeLU's 8H².
long default_ffn_hidden_size(Activation activation, long hidden_size);
// Megatron-LM's rule for SwiGLU, for comparison: 2/3·4H rounded down to a multiple of 64
// (H 4096 -> 10880).
long megatron_ffn_hidden_size(long hidden_size);

struct Config {
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
  bool backward = false;           // also the backward pass (megatron, megatron-sp, serial)
  bool bias = false;               // the linears have biases b1 (b3) [F] and b2 [H]
  Activation activation = Activation::gelu;
  long ffn_hidden_size = 0;  // F; 0 for the activation's default
  DType dtype = DType::fp32;
  std::optional<DType> reduce_dtype;  // --reduce-dtype; unset: the --dtype, as in Megatron-LM
  Fault fault = Fault::none;
  int timeout = 600;        // seconds any rank may wait in one MPI call before the job is ended
  std::string json_path;    // empty: no JSON report
  std::string tensors_dir;  // empty: no .npy files

  long tokens() const { return long(batch_size) * seq_len; }
  // F, the FFN's intermediate width: --ffn-hidden-size, or the activation's default.
  long intermediate_size() const {
    return ffn_hidden_size > 0 ? ffn_hidden_size : default_ffn_hidden_size(activation, hidden_size);
  }
  // Projections of X that the activation takes: W1 for GeLU; W1 (gate) and W3 (up) for SwiGLU.
  int projections() const { return activation == Activation::swiglu ? 2 : 1; }
  DType reduction() const { return reduce_dtype.value_or(dtype); }
  std::vector<Scheme> schemes() const;  // what the flags select, in report order
};

const char* scheme_name(Scheme scheme);
const char* choice_name(SchemeChoice choice);        // as spelled on the command line
const char* activation_name(Activation activation);  // "gelu", "swiglu"
const char* fault_name(Fault fault);                 // "w2-over-t", ...
const char* dtype_name(DType dtype);                 // "fp32", "bf16"
long dtype_bytes(DType dtype);

// The outcome of reading argv: a configuration to run, or text to print and an exit code
// (help is text with exit code 0).
struct ParsedArgs {
  std::optional<Config> config;
  int exit_code = 0;
  std::string text;
  bool text_is_error = false;
};
ParsedArgs parse_args(int argc, const char* const* argv);

// The facts about the launch that validation needs.
struct LaunchFacts {
  int world_size = 1;
  int ranks_on_this_node = 1;
  double available_bytes = 0;  // on this node
};

// Empty when the flags fit together and fit this launch; otherwise one sentence that names
// the flag, the value and what would be allowed.
std::string validate(const Config& cfg, const LaunchFacts& launch);

}  // namespace tp_mlp
