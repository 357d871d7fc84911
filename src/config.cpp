// config: CLI11 flags with real ranges, then the checks that need the whole configuration.
#include "tp_mlp/config.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdio>
#include <cstring>
#include <limits>
#include <sstream>

#include <CLI/CLI.hpp>

namespace tp_mlp {
namespace {

// Ranges are real limits, not decoration: with every flag inside them, no product of
// flags overflows 64 bits, and the memory check below rejects what would not fit.
constexpr int kMaxTpSize = 4096;
constexpr int kMaxDimension = 1 << 20;
constexpr long kMaxFfnSize = 4L * kMaxDimension;
constexpr int kMaxIterations = 1000000;
constexpr int kMaxTimeout = 7 * 24 * 3600;  // a week
constexpr int kMaxChunks = 64;              // TpComm's collectives in flight

const char* kDescription =
    "tp_mlp: Megatron-style tensor parallelism for a transformer MLP block.\n"
    "\n"
    "  Y = GeLU(X . W1) . W2,  X [batch, seq, H],  W1 [H, F],  W2 [F, H],  F = 4H\n"
    "  --activation swiglu: Y = (SiLU(X . W1) * (X . W3)) . W2, LLaMA's gated MLP: gate W1 and\n"
    "           up W3 [H, F], F = 2/3 x 4H rounded up to a multiple of 256 (LLaMA's rule;\n"
    "           Megatron-LM rounds down to a multiple of 64); each rank holds the matching\n"
    "           columns of both, fused as [gate | up], so SiLU and the product stay local\n"
    "  F need not divide by T: shards differ by at most one column, and tokens likewise.\n"
    "\n"
    "  megatron: W1 split by columns -> GeLU local -> W2 split by rows -> 1 all-reduce\n"
    "  naive:    W1 and W2 split by rows -> all-reduce before GeLU and after W2: 2, 5x bytes\n"
    "  serial:   the whole MLP on one rank, no communication\n"
    "  megatron-sp (--sequence-parallel): megatron with X and Y split by tokens,\n"
    "           all-gather in, reduce-scatter out: the all-reduce's bytes\n"
    "  megatron-overlap (--overlap): megatron in token chunks, each chunk's all-reduce\n"
    "           in flight while the next computes: what a network link costs, hidden\n"
    "  --backward adds dX, dW1, dW2 (one more all-reduce); --bias adds b1 and b2.\n"
    "  --dtype bf16: bf16 weights and GEMM inputs, fp32 accumulation, against the bf16 peak.\n"
    "\n"
    "Prints CORRECTNESS VERIFICATION, COMMUNICATION ANALYSIS, BENCHMARK and SCALING ANALYSIS.\n"
    "The model depends on --seed only, never on --tp-size or the number of ranks.";

// --scheme's values, in the order --help and its error message list them.
const std::vector<std::pair<std::string, SchemeChoice>> kSchemeChoices = {
    {"megatron", SchemeChoice::megatron},
    {"naive", SchemeChoice::naive},
    {"serial", SchemeChoice::serial},
    {"all", SchemeChoice::all}};

const std::vector<std::pair<std::string, Activation>> kActivations = {
    {"gelu", Activation::gelu}, {"swiglu", Activation::swiglu}};

const std::vector<std::pair<std::string, DType>> kDTypes = {{"fp32", DType::fp32},
                                                            {"bf16", DType::bf16}};

const std::vector<std::pair<std::string, Fault>> kFaults = {
    {"none", Fault::none},
    {"missing-partial-sum", Fault::missing_partial_sum},
    {"duplicate-shard", Fault::duplicate_shard},
    {"bias-on-every-rank", Fault::bias_on_every_rank},
    {"w2-over-t", Fault::w2_over_t},
    {"gate-up-split", Fault::gate_up_split}};

const char* kFooter =
    "Launch with a rank count that is a multiple of --tp-size (each group of --tp-size ranks\n"
    "runs the same model); without mpirun the world is one rank:\n"
    "  mpirun -np 4 ./tp_mlp --tp-size 4 --hidden-size 256\n"
    "  ./tp_mlp --tp-size 1 --hidden-size 1024 --json run.json\n"
    "Over a simulated network link (two hosts in network namespaces, as root):\n"
    "  scripts/two_hosts.sh --gbit 1 -- --hidden-size 1024 -b 8 -s 128 --overlap\n"
    "Exit status: 0 verified, 2 refused (one message says why), 3 an MPI call failed,\n"
    "4 verification failed, 5 one rank failed alone, 6 --timeout, 100-120 bad flags.\n";

// A whole-number flag whose help shows its range and default (the value's own, unless the
// help already says what the default is), and whose error says what
// is wanted (CLI11's Range says "Value abc not in range" for a non-number). Numbers are plain
// decimal digits: CLI11 would read a leading 0 as octal (010 as 8) and 0x as hexadecimal, so a
// leading zero is refused like any other malformed number rather than read one way or another.
template <typename Integer>
void add_whole_number(CLI::App& app, const std::string& flags, Integer& value,
                      unsigned long long lo, unsigned long long hi, const std::string& help) {
  const std::string range = std::to_string(lo) + ".." + std::to_string(hi);
  CLI::Validator whole_number(
      [lo, hi, range](std::string& text) -> std::string {
        unsigned long long parsed = 0;
        const char* end = text.data() + text.size();
        auto [stop, error] = std::from_chars(text.data(), end, parsed);
        const bool leading_zero = text.size() > 1 && text.front() == '0';
        if (text.empty() || leading_zero || stop != end || error != std::errc() || parsed < lo ||
            parsed > hi)
          return "must be a whole number in " + range + ", not '" + text + "'";
        return "";
      },
      "");
  const bool default_in_help = help.find("Default") != std::string::npos;
  app.add_option(flags, value,
                 default_in_help ? help : help + " (default " + std::to_string(value) + ")")
      ->type_name("INT in " + range)
      ->check(whole_number);
}

// Empty when --plant-fault can be planted in this configuration.
std::string fault_problem(const Config& cfg) {
  const std::vector<Scheme> schemes = cfg.schemes();
  const std::string flag = std::string("--plant-fault ") + fault_name(cfg.fault);
  if (std::find(schemes.begin(), schemes.end(), Scheme::megatron) == schemes.end())
    return flag + " is planted in the megatron scheme: use --scheme megatron or all";
  const bool needs_two = cfg.fault == Fault::missing_partial_sum ||
                         cfg.fault == Fault::duplicate_shard || cfg.fault == Fault::gate_up_split;
  if (needs_two && cfg.tp_size < 2) return flag + " needs --tp-size 2 or more: it is about shards";
  if (cfg.fault == Fault::bias_on_every_rank && !cfg.bias) return flag + " needs --bias";
  if (cfg.fault == Fault::gate_up_split && cfg.activation != Activation::swiglu)
    return flag + " needs --activation swiglu";
  return "";
}

}  // namespace

const char* scheme_name(Scheme scheme) {
  switch (scheme) {
    case Scheme::megatron: return "megatron";
    case Scheme::megatron_sp: return "megatron-sp";
    case Scheme::megatron_overlap: return "megatron-overlap";
    case Scheme::naive: return "naive";
    case Scheme::serial: return "serial";
  }
  return "?";
}

const char* activation_name(Activation activation) {
  for (const auto& [name, value] : kActivations)
    if (value == activation) return name.c_str();
  return "?";
}

const char* dtype_name(DType dtype) {
  for (const auto& [name, value] : kDTypes)
    if (value == dtype) return name.c_str();
  return "?";
}

long dtype_bytes(DType dtype) { return dtype == DType::bf16 ? 2 : 4; }

const char* fault_name(Fault fault) {
  for (const auto& [name, value] : kFaults)
    if (value == fault) return name.c_str();
  return "?";
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

const char* choice_name(SchemeChoice choice) {
  for (const auto& [name, value] : kSchemeChoices)
    if (value == choice) return name.c_str();
  return "?";
}

std::vector<Scheme> Config::schemes() const {
  auto chosen = [this](SchemeChoice c) {
    return scheme_choice == SchemeChoice::all || scheme_choice == c;
  };
  std::vector<Scheme> schemes;
  if (chosen(SchemeChoice::megatron)) schemes.push_back(Scheme::megatron);
  if (chosen(SchemeChoice::megatron) && sequence_parallel) schemes.push_back(Scheme::megatron_sp);
  if (chosen(SchemeChoice::megatron) && overlap) schemes.push_back(Scheme::megatron_overlap);
  if (chosen(SchemeChoice::naive)) schemes.push_back(Scheme::naive);
  if (chosen(SchemeChoice::serial)) schemes.push_back(Scheme::serial);
  return schemes;
}

ParsedArgs parse_args(int argc, const char* const* argv) {
  Config cfg;
  CLI::App app{kDescription, "tp_mlp"};
  app.footer(kFooter);
  app.get_formatter()->column_width(38);
  add_whole_number(app, "-t,--tp-size", cfg.tp_size, 1, kMaxTpSize,
                   "Tensor-parallel degree T: ranks sharing one model");
  add_whole_number(app, "-H,--hidden-size", cfg.hidden_size, 1, kMaxDimension, "Hidden size H");
  add_whole_number(app, "-b,--batch-size", cfg.batch_size, 1, kMaxDimension, "Batch size b");
  add_whole_number(app, "-s,--seq-len", cfg.seq_len, 1, kMaxDimension,
                   "Sequence length s (tokens = b x s)");
  add_whole_number(app, "--iterations", cfg.iterations, 1, kMaxIterations,
                   "Timed forward passes per scheme");
  add_whole_number(app, "--warmup", cfg.warmup, 0, kMaxIterations,
                   "Untimed forward passes before timing");
  add_whole_number(app, "--seed", cfg.seed, 0, std::numeric_limits<std::uint64_t>::max(),
                   "Seed of the master weights and the input");
  add_whole_number(app, "--timeout", cfg.timeout, 1, kMaxTimeout,
                   "Seconds a rank may wait in one MPI call before the job is ended with a "
                   "message naming the call (a rank that stopped responding)");
  std::string activation = activation_name(cfg.activation);
  app.add_option("--activation", activation,
                 "gelu: GeLU(X.W1).W2, the script's; swiglu: (SiLU(X.W1) * X.W3).W2, LLaMA's "
                 "(default gelu)")
      ->type_name("NAME")
      ->check(CLI::IsMember(kActivations).description(""));
  add_whole_number(app, "--ffn-hidden-size", cfg.ffn_hidden_size, 1, kMaxFfnSize,
                   "FFN width F: W1 is [H, F]. Default: 4H for gelu; for swiglu LLaMA's "
                   "256 x ceil(2/3 x 4H / 256) (Megatron-LM's rule, 64 x floor(2/3 x 4H / 64), "
                   "is one --ffn-hidden-size away)");
  std::string scheme_choice = choice_name(cfg.scheme_choice);
  app.add_option("--scheme", scheme_choice,
                 "Forward passes to run and compare: megatron, naive, serial or all (default all)")
      ->type_name("NAME")
      ->check(CLI::IsMember(kSchemeChoices).description(""));
  std::string dtype = dtype_name(cfg.dtype), reduce_dtype;
  app.add_option("--dtype", dtype,
                 "fp32, or bf16: weights, activations and GEMM inputs in bf16, products "
                 "accumulated in fp32, GeLU/SiLU in fp32, weight gradients in fp32 (default fp32)")
      ->type_name("TYPE")
      ->check(CLI::IsMember(kDTypes).description(""));
  app.add_option("--reduce-dtype", reduce_dtype,
                 "The type of the partial sums the all-reduce (reduce-scatter) moves: bf16 halves "
                 "the bytes but rounds at every addition, fp32 keeps the digits (default: --dtype, "
                 "as Megatron-LM does)")
      ->type_name("TYPE")
      ->check(CLI::IsMember(kDTypes).description(""));
  std::string fault = fault_name(cfg.fault);
  app.add_option("--plant-fault", fault,
                 "Plant a classic mistake in the megatron scheme and watch verification catch it: "
                 "missing-partial-sum, duplicate-shard (T >= 2), bias-on-every-rank (--bias), "
                 "w2-over-t (the script's), gate-up-split (swiglu, T >= 2); exits 4")
      ->type_name("NAME")
      ->check(CLI::IsMember(kFaults).description(""));
  // A flag given twice is a mistake worth pointing out, as for the options.
  const auto once = CLI::MultiOptionPolicy::Throw;
  app.add_flag("--backward", cfg.backward,
               "Also run and verify the backward pass, given a fixed upstream gradient dY")
      ->multi_option_policy(once);
  app.add_flag("--bias", cfg.bias, "Give both linears a bias (b1 split with W1, b2 added once)")
      ->multi_option_policy(once);
  app.add_flag("--sequence-parallel", cfg.sequence_parallel,
               "Also run megatron with sequence parallelism (megatron-sp): all-gather and "
               "reduce-scatter instead of all-reduce")
      ->multi_option_policy(once);
  app.add_flag("--overlap", cfg.overlap,
               "Also run megatron-overlap: the forward in token chunks, each chunk's all-reduce "
               "in flight while the next chunk computes, and the backward's dX all-reduce during "
               "the dW1 GEMM")
      ->multi_option_policy(once);
  add_whole_number(app, "--overlap-chunks", cfg.overlap_chunks, 1, kMaxChunks,
                   "Token chunks of megatron-overlap's forward. Default: chosen by timing the "
                   "all-reduce against the compute at start-up (1, i.e. no overlap, where there "
                   "is nothing to hide)");
  // An empty path would silently mean "no output": refuse it instead.
  const CLI::Validator named(
      [](std::string& text) { return text.empty() ? std::string("must name a path, not ''") : ""; },
      "");
  app.add_option("--json", cfg.json_path,
                 "Also write the whole report as JSON to this file (- for standard output)")
      ->type_name("FILE")
      ->check(named);
  app.add_option(
         "--save-tensors", cfg.tensors_dir,
         "Write the master tensors (x, w1, w2; w3 with swiglu; b1, b2, b3 with --bias), y and, "
         "with --backward, dy and the gradients of the verification pass as .npy files here")
      ->type_name("DIR")
      ->check(named);

  ParsedArgs parsed;
  try {
    app.parse(argc, argv);
    for (const auto& [name, value] : kSchemeChoices)
      if (name == scheme_choice) cfg.scheme_choice = value;
    for (const auto& [name, value] : kActivations)
      if (name == activation) cfg.activation = value;
    for (const auto& [name, value] : kFaults)
      if (name == fault) cfg.fault = value;
    for (const auto& [name, value] : kDTypes) {
      if (name == dtype) cfg.dtype = value;
      if (name == reduce_dtype) cfg.reduce_dtype = value;
    }
    parsed.config = cfg;
  } catch (const CLI::ParseError& e) {
    std::ostringstream out, err;
    parsed.exit_code = app.exit(e, out, err);
    parsed.text_is_error = parsed.exit_code != 0;
    parsed.text = out.str() + err.str();
  }
  return parsed;
}

std::string validate(const Config& cfg, const LaunchFacts& launch) {
  const int T = cfg.tp_size, world = launch.world_size;
  const std::vector<Scheme> schemes = cfg.schemes();
  const bool runs_naive = std::find(schemes.begin(), schemes.end(), Scheme::naive) != schemes.end();
  const long F = cfg.intermediate_size(), widest = cfg.tokens() * cfg.projections() * F;
  // Shards may differ by one column or token (partition.hpp); what is refused is a rank that
  // would hold nothing, and groups of unequal size.
  std::ostringstream why;
  if (T > world) {
    why << "--tp-size " << T << " needs at least " << T << " MPI ranks, but this job has " << world
        << ": launch it as mpirun -np " << T << " ./tp_mlp --tp-size " << T;
  } else if (world % T != 0) {
    why << "--tp-size " << T << " must divide the number of MPI ranks (" << world
        << "): launch a multiple of " << T << " ranks, or pick a --tp-size that divides " << world;
  } else if (F < T) {
    why << "--tp-size " << T << " is more than the FFN width F = " << F
        << ", which W1's columns and W2's rows are split along: a rank would hold no columns";
  } else if (cfg.hidden_size < T && runs_naive) {
    why << "the naive scheme splits --hidden-size " << cfg.hidden_size << " over --tp-size " << T
        << " ranks: a rank would hold no rows of W1"
        << (cfg.scheme_choice == SchemeChoice::all
                ? ": choose another size, or --scheme megatron to skip it"
                : "");
  } else if (cfg.sequence_parallel && cfg.scheme_choice != SchemeChoice::all &&
             cfg.scheme_choice != SchemeChoice::megatron) {
    why << "--sequence-parallel is a variant of the megatron scheme: use it with --scheme "
           "megatron or all, not "
        << choice_name(cfg.scheme_choice);
  } else if (cfg.sequence_parallel && cfg.tokens() < T) {
    why << "--sequence-parallel splits the " << cfg.tokens()
        << " tokens (--batch-size x --seq-len) over --tp-size " << T
        << " ranks: a rank would hold no tokens";
  } else if (cfg.overlap && cfg.scheme_choice != SchemeChoice::all &&
             cfg.scheme_choice != SchemeChoice::megatron) {
    why << "--overlap is a variant of the megatron scheme: use it with --scheme megatron or all, "
           "not "
        << choice_name(cfg.scheme_choice);
  } else if (cfg.overlap_chunks > 0 && !cfg.overlap) {
    why << "--overlap-chunks " << cfg.overlap_chunks
        << " sets the chunks of megatron-overlap, which runs only with --overlap";
  } else if (cfg.overlap_chunks > cfg.tokens()) {
    why << "--overlap-chunks " << cfg.overlap_chunks << " splits the " << cfg.tokens()
        << " tokens (--batch-size x --seq-len): a chunk would hold no tokens";
  } else if (cfg.backward && cfg.scheme_choice == SchemeChoice::naive) {
    why << "--backward is implemented for megatron, megatron-sp and serial, not for --scheme naive";
  } else if (cfg.dtype == DType::fp32 && cfg.reduction() == DType::bf16) {
    why << "--reduce-dtype bf16 rounds the partial sums of an --dtype fp32 model to bf16, which "
           "only loses digits: use it with --dtype bf16";
  } else if (!fault_problem(cfg).empty()) {
    why << fault_problem(cfg);
  } else if (widest > INT_MAX) {
    why << "--batch-size x --seq-len x " << (cfg.projections() > 1 ? "2 x " : "")
        << "the FFN width = " << widest
        << " elements exceeds the largest tensor MPI can send in one call (" << INT_MAX << ")";
  }
  return why.str();
}

}  // namespace tp_mlp
