// cli: the command line, read by CLI11: every flag with its real range and a help that teaches.
#include "tp_mlp/cli.hpp"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <sstream>

#include <CLI/CLI.hpp>

#include "tp_mlp/collective.hpp"
#include "tp_mlp/models.hpp"

namespace tp_mlp {
namespace {

// Ranges are real limits, not decoration: with every flag inside them, no product of
// flags overflows 64 bits, and the memory check rejects what would not fit.
constexpr int kMaxTpSize = 4096;
constexpr int kMaxDimension = 1 << 20;
constexpr long kMaxFfnSize = 4L * kMaxDimension;
constexpr int kMaxIterations = 1000000;
constexpr int kMaxTimeout = 7 * 24 * 3600;  // a week

const char* kDescription =
    "tp_mlp: Megatron-style tensor parallelism for a transformer MLP block (--block: or its\n"
    "attention, or a whole transformer layer).\n"
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
    "  --block attention: causal self-attention split by heads instead, as Megatron-LM does:\n"
    "  Q = X.Wq [H, N.d], K, V = X.Wk, X.Wv [H, K.d], RoPE on Q and K, softmax(QK^T/sqrt(d)).V\n"
    "  per sequence, Y = O.Wo [N.d, H]. Each rank owns a contiguous block of the N query heads\n"
    "  (counts differ by at most one; a rank may own none) and computes its heads' Q, K, V\n"
    "  columns (column-parallel) and its rows of Wo (row-parallel): 1 all-reduce forward, as\n"
    "  the MLP's. With K < N (grouped-query attention) query head q uses KV head floor(q.K/N):\n"
    "  a KV head needed by several ranks (K < T, or its query heads straddling two ranks) is\n"
    "  replicated on each, and backward its Wk, Wv gradients are summed over the group (one\n"
    "  more all-reduce, of the replicated heads' columns only). With --dtype bf16 the four\n"
    "  projections run in bf16 and attention itself (RoPE, softmax) in fp32.\n"
    "\n"
    "  --block layer: a whole pre-norm transformer layer of both blocks, as LLaMA and GPT-2\n"
    "  stack them: h = X + Attention(Norm1(X)), Y = h + MLP(Norm2(h)). Each block enters and\n"
    "  leaves the tensor-parallel region on its own: 2 all-reduces forward, 2 backward (+ the\n"
    "  KV replicas'); the norms and residuals run on every rank, whole, or with\n"
    "  --sequence-parallel on each rank's tokens, their weights' gradients summed over the\n"
    "  group. --model llama3-8b (and others) gives a published model's shapes. Verified end\n"
    "  to end, and part by part: each norm and block from the input the scheme gave it.\n"
    "\n"
    "Prints CORRECTNESS VERIFICATION, COMMUNICATION ANALYSIS, BENCHMARK and SCALING ANALYSIS.\n"
    "The model depends on --seed only, never on --tp-size or the number of ranks.";

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

// A real number > 0 in plain decimal notation (digits, a point, an exponent): no hexadecimal
// floats, infinities or NaNs, which strtod would also read.
const CLI::Validator positive_real(
    [](std::string& text) -> std::string {
      const bool plain =
          !text.empty() && text.find_first_not_of("0123456789.eE+-") == std::string::npos;
      char* end = nullptr;
      const double value = plain ? std::strtod(text.c_str(), &end) : 0.0;
      if (!plain || end != text.c_str() + text.size() || !std::isfinite(value) || value <= 0)
        return "must be a real number > 0, not '" + text + "'";
      return "";
    },
    "");

// What a --model preset sets, where the command line left it unset: of the chosen block's
// shapes only (the MLP block has no heads, only the layer has norms).
void apply_preset(const ModelPreset& m, const CLI::App& app, Config& cfg) {
  auto unset = [&](const char* flag) { return app.count(flag) == 0; };
  const bool heads = cfg.block != BlockKind::mlp, norms = cfg.block == BlockKind::layer;
  if (unset("--hidden-size")) cfg.hidden_size = m.hidden_size;
  if (unset("--ffn-hidden-size")) cfg.ffn_hidden_size = m.ffn_hidden_size;
  if (unset("--activation")) cfg.activation = m.activation;
  if (heads && unset("--num-heads")) cfg.num_heads = m.num_heads;
  if (heads && unset("--num-kv-heads")) cfg.num_kv_heads = m.num_kv_heads;
  if (heads && unset("--rope-theta")) cfg.rope_theta = m.rope_theta;
  if (norms && unset("--norm")) cfg.norm = m.norm;
}

}  // namespace

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
  std::string block = block_name(cfg.block);
  app.add_option("--block", block,
                 "mlp: the MLP block (the script's); attention: causal self-attention split by "
                 "heads; layer: a pre-norm transformer layer of both, with norms and residuals "
                 "(default mlp)")
      ->type_name("NAME")
      ->check(CLI::IsMember(blocks()).description(""));
  add_whole_number(
      app, "--num-heads", cfg.num_heads, 1, kMaxDimension,
      "Attention's query heads N (--block attention or layer), each of d = H/N features: N "
      "must divide H and d be even (RoPE turns pairs of features); N need not divide "
      "by T. Default: H/64, at least 1");
  add_whole_number(
      app, "--num-kv-heads", cfg.num_kv_heads, 1, kMaxDimension,
      "Key/value heads K (--block attention or layer), dividing N: K < N is grouped-query "
      "attention, query head q using KV head floor(q x K / N); a KV head that several "
      "ranks need is replicated on each, its gradients summed over them. Default: N");
  double rope_theta = cfg.rope_base();
  app.add_option("--rope-theta", rope_theta,
                 "RoPE's base theta (--block attention or layer): pair i of a head turns by "
                 "position x theta^(-2i/d); LLaMA 1-2 use 10000, Llama 3 500000 (default 10000)")
      ->type_name("REAL > 0")
      ->check(positive_real);
  std::vector<std::string> model_names;
  std::string model_list;
  for (const ModelPreset& m : model_presets()) {
    model_names.push_back(m.name);
    model_list += (model_list.empty() ? "" : ", ") + m.name;
  }
  app.add_option("--model", cfg.model,
                 "A well-known model's shapes: H, F, N, K, the activation, the norm and RoPE's "
                 "theta from its published configuration (" +
                     model_list +
                     "), as a start: an explicit flag overrides its value. With --block layer, "
                     "the whole layer; with --block mlp or attention, that block of it")
      ->type_name("NAME")
      ->check(CLI::IsMember(model_names).description(""));
  std::string norm;
  app.add_option("--norm", norm,
                 "The layer's normalisations (--block layer), eps 1e-5: rmsnorm (LLaMA's) or "
                 "layernorm (GPT-2's). Default: rmsnorm with swiglu, layernorm with gelu")
      ->type_name("NAME")
      ->check(CLI::IsMember(norms()).description(""));
  std::string activation = activation_name(cfg.activation);
  app.add_option("--activation", activation,
                 "gelu: GeLU(X.W1).W2, the script's; swiglu: (SiLU(X.W1) * X.W3).W2, LLaMA's "
                 "(default gelu)")
      ->type_name("NAME")
      ->check(CLI::IsMember(activations()).description(""));
  add_whole_number(app, "--ffn-hidden-size", cfg.ffn_hidden_size, 1, kMaxFfnSize,
                   "FFN width F: W1 is [H, F]. Default: 4H for gelu; for swiglu LLaMA's "
                   "256 x ceil(2/3 x 4H / 256) (Megatron-LM's rule, 64 x floor(2/3 x 4H / 64), "
                   "is one --ffn-hidden-size away)");
  std::string scheme_choice = choice_name(cfg.scheme_choice);
  app.add_option("--scheme", scheme_choice,
                 "Forward passes to run and compare: megatron, naive, serial or all (default all)")
      ->type_name("NAME")
      ->check(CLI::IsMember(scheme_choices()).description(""));
  std::string dtype = dtype_name(cfg.dtype), reduce_dtype;
  app.add_option("--dtype", dtype,
                 "fp32, or bf16: weights, activations and GEMM inputs in bf16, products "
                 "accumulated in fp32, GeLU/SiLU (attention's RoPE and softmax) in fp32, weight "
                 "gradients in fp32; every block (the layer's norms and residual stream stay fp32) "
                 "(default fp32)")
      ->type_name("TYPE")
      ->check(CLI::IsMember(dtypes()).description(""));
  app.add_option("--reduce-dtype", reduce_dtype,
                 "The type of the partial sums the all-reduce (reduce-scatter) moves: bf16 halves "
                 "the bytes but rounds at every addition, fp32 keeps the digits (default: --dtype, "
                 "as Megatron-LM does)")
      ->type_name("TYPE")
      ->check(CLI::IsMember(dtypes()).description(""));
  std::string fault = fault_name(cfg.fault);
  app.add_option(
         "--plant-fault", fault,
         "Plant a classic mistake in the megatron scheme and watch verification catch it: "
         "missing-partial-sum, duplicate-shard, bias-on-every-rank (--bias), w2-over-t (the "
         "script's), gate-up-split (swiglu), each T >= 2 and exiting 4; and "
         "one-ulp (--invariant, in every block), which passes verification but changes "
         "megatron-inv's digests; with --block attention: kv-grad-not-summed (--backward, a "
         "replicated KV head), wrong-kv-head (K >= 2), each exiting 4; --block layer takes both "
         "kinds, the MLP's planted in its MLP, and norm-grad-not-summed (--sequence-parallel "
         "--backward: the norms' gradients left unsummed in megatron-sp)")
      ->type_name("NAME")
      ->check(CLI::IsMember(faults()).description(""));
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
  app.add_flag("--invariant", cfg.invariant,
               "Also run megatron (-sp, -overlap) and serial as *-inv: every output and gradient "
               "with the same bits at every --tp-size, uneven shards and chunks included (F in "
               "fixed blocks, their partial sums added exactly as 64-bit integers; with --block "
               "attention, every head on its own and the sums over heads exact; --block layer "
               "both, not with --sequence-parallel); "
               "CORRECTNESS VERIFICATION prints each tensor's digest")
      ->multi_option_policy(once);
  add_whole_number(app, "--overlap-chunks", cfg.overlap_chunks, 1, kMaxCollectivesInFlight,
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
         "Write the master tensors (x, w1, w2; w3 with swiglu; b1, b2, b3 with --bias; "
         "attention's wq, wk, wv, wo, bq, bk, bv, bo; the layer's norm1_w, norm2_w, and "
         "norm1_b, norm2_b for layernorm), y and, with --backward, dy, dx and every gradient "
         "(d + the tensor's name: dw1, dwq, dnorm1_w, ...) of the verification pass as .npy "
         "files here, master-shaped whatever the TP size")
      ->type_name("DIR")
      ->check(named);

  ParsedArgs parsed;
  try {
    app.parse(argc, argv);
    for (const auto& [name, value] : scheme_choices())
      if (name == scheme_choice) cfg.scheme_choice = value;
    for (const auto& [name, value] : activations())
      if (name == activation) cfg.activation = value;
    for (const auto& [name, value] : blocks())
      if (name == block) cfg.block = value;
    if (app.count("--rope-theta") > 0) cfg.rope_theta = rope_theta;
    for (const auto& [name, value] : norms())
      if (name == norm) cfg.norm = value;
    if (const ModelPreset* m = find_model(cfg.model)) apply_preset(*m, app, cfg);
    for (const auto& [name, value] : faults())
      if (name == fault) cfg.fault = value;
    for (const auto& [name, value] : dtypes()) {
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

}  // namespace tp_mlp
