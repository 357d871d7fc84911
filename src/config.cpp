// config: CLI11 flags with real ranges, then the checks that need the whole configuration.
#include "tp_mlp/config.hpp"

#include <algorithm>
#include <charconv>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <sstream>

#include <CLI/CLI.hpp>

namespace tp_mlp {
namespace {

// Ranges are real limits, not decoration: with every flag inside them, no product of
// flags overflows 64 bits, and the memory check below rejects what would not fit.
constexpr int kMaxTpSize = 4096;
constexpr int kMaxDimension = 1 << 20;
constexpr int kMaxIterations = 1000000;
constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

const char* kDescription =
    "tp_mlp: Megatron-style tensor parallelism for a transformer MLP block.\n"
    "\n"
    "  Y = GeLU(X . W1) . W2,  X [batch, seq, H],  W1 [H, 4H],  W2 [4H, H]\n"
    "\n"
    "  megatron: W1 split by columns -> GeLU local -> W2 split by rows -> 1 all-reduce\n"
    "  naive:    W1 and W2 split by rows -> all-reduce before GeLU and after W2: 2, 5x bytes\n"
    "  serial:   the whole MLP on one rank, no communication\n"
    "  megatron-sp (--sequence-parallel): megatron with X and Y split by tokens,\n"
    "           all-gather in, reduce-scatter out: the all-reduce's bytes\n"
    "  --backward adds dX, dW1, dW2 (one more all-reduce); --bias adds b1 and b2.\n"
    "\n"
    "Prints CORRECTNESS VERIFICATION, COMMUNICATION ANALYSIS, BENCHMARK and SCALING ANALYSIS.\n"
    "The model depends on --seed only, never on --tp-size or the number of ranks.";

const char* kFooter =
    "Launch with a rank count that is a multiple of --tp-size (each group of --tp-size ranks\n"
    "runs the same model); without mpirun the world is one rank:\n"
    "  mpirun -np 4 ./tp_mlp --tp-size 4 --hidden-size 256\n"
    "  ./tp_mlp --tp-size 1 --hidden-size 1024 --json run.json\n";

// A whole-number flag whose help shows its range and default, and whose error says what
// is wanted (CLI11's Range says "Value abc not in range" for a non-number).
template <typename Integer>
void add_whole_number(CLI::App& app, const std::string& flags, Integer& value,
                      unsigned long long lo, unsigned long long hi, const std::string& help) {
  const std::string range = std::to_string(lo) + ".." + std::to_string(hi);
  CLI::Validator whole_number(
      [lo, hi, range](std::string& text) -> std::string {
        unsigned long long parsed = 0;
        const char* end = text.data() + text.size();
        auto [stop, error] = std::from_chars(text.data(), end, parsed);
        if (text.empty() || stop != end || error != std::errc() || parsed < lo || parsed > hi)
          return "must be a whole number in " + range + ", not '" + text + "'";
        return "";
      },
      "");
  app.add_option(flags, value, help + " (default " + std::to_string(value) + ")")
      ->type_name("INT in " + range)
      ->check(whole_number);
}

std::string gib(double bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f GiB", bytes / kGiB);
  return text;
}

}  // namespace

const char* scheme_name(Scheme scheme) {
  switch (scheme) {
    case Scheme::megatron: return "megatron";
    case Scheme::megatron_sp: return "megatron-sp";
    case Scheme::naive: return "naive";
    case Scheme::serial: return "serial";
  }
  return "?";
}

std::vector<Scheme> Config::schemes() const {
  std::vector<Scheme> chosen;
  for (Scheme s : {Scheme::megatron, Scheme::megatron_sp, Scheme::naive, Scheme::serial}) {
    // megatron-sp is megatron with --sequence-parallel, so it goes where megatron goes.
    const char* selector = scheme_name(s == Scheme::megatron_sp ? Scheme::megatron : s);
    if ((scheme == "all" || scheme == selector) && (s != Scheme::megatron_sp || sequence_parallel))
      chosen.push_back(s);
  }
  return chosen;
}

ParsedArgs parse_args(int argc, const char* const* argv) {
  Config cfg;
  CLI::App app{kDescription, "tp_mlp"};
  app.footer(kFooter);
  app.get_formatter()->column_width(38);
  add_whole_number(app, "-t,--tp-size", cfg.tp_size, 1, kMaxTpSize,
                   "Tensor-parallel degree T: ranks sharing one model");
  add_whole_number(app, "-H,--hidden-size", cfg.hidden_size, 1, kMaxDimension,
                   "Hidden size H (intermediate size is 4H)");
  add_whole_number(app, "-b,--batch-size", cfg.batch_size, 1, kMaxDimension, "Batch size b");
  add_whole_number(app, "-s,--seq-len", cfg.seq_len, 1, kMaxDimension,
                   "Sequence length s (tokens = b x s)");
  add_whole_number(app, "--iterations", cfg.iterations, 1, kMaxIterations,
                   "Timed forward passes per scheme");
  add_whole_number(app, "--warmup", cfg.warmup, 0, kMaxIterations,
                   "Untimed forward passes before timing");
  add_whole_number(app, "--seed", cfg.seed, 0, std::numeric_limits<std::uint64_t>::max(),
                   "Seed of the master weights and the input");
  app.add_option("--scheme", cfg.scheme,
                 "Forward passes to run and compare: megatron, naive, serial or all (default all)")
      ->type_name("NAME")
      ->check(CLI::IsMember({"megatron", "naive", "serial", "all"}).description(""));
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
  app.add_option("--json", cfg.json_path, "Also write the whole report as JSON to this file")
      ->type_name("FILE");
  app.add_option("--save-tensors", cfg.tensors_dir,
                 "Write x, w1, w2, y of the verification pass as .npy files here")
      ->type_name("DIR");

  ParsedArgs parsed;
  try {
    app.parse(argc, argv);
    parsed.config = cfg;
  } catch (const CLI::ParseError& e) {
    std::ostringstream out, err;
    parsed.exit_code = app.exit(e, out, err);
    parsed.text_is_error = parsed.exit_code != 0;
    parsed.text = out.str() + err.str();
  }
  return parsed;
}

MemoryEstimate estimate_memory(const Config& cfg) {
  const double f = sizeof(float), d = sizeof(double);
  const double H = cfg.hidden_size, FF = 4.0 * H, T = cfg.tp_size, tokens = double(cfg.tokens());
  MemoryEstimate m;
  m.activations = tokens * H * f;  // X
  for (Scheme s : cfg.schemes()) {
    switch (s) {
      case Scheme::megatron:
      case Scheme::megatron_sp:  // its token-split buffers are extra, and small
        m.weights += 2 * H * FF / T * f;
        m.activations += tokens * (FF / T + 2 * H) * f;
        if (cfg.backward) m.activations += tokens * (3 * FF / T + 2 * H) * f;
        break;
      case Scheme::naive:
        m.weights += 2 * H * FF / T * f;
        m.activations += 2 * tokens * (FF + H) * f;  // its buffers and the floor's
        break;
      case Scheme::serial:
        m.serial = (2 * H * FF + tokens * (FF + H)) * f;
        if (cfg.backward) m.serial += (2 * H * FF + tokens * (2 * FF + H)) * f;
        m.activations += 2 * tokens * H * f;  // copies of its output and dX, to verify
        break;
    }
  }
  // The reference takes a share of the tokens and blocks of W1 and W2 half a shard wide,
  // in double: about one shard's bytes.
  const double block = std::ceil(FF / T / 2);
  m.reference = (2 * H * block + tokens * (2 * block + 2 * H)) * d;
  // Weight gradients sum over all tokens: X and dY whole, and three [tokens, block] blocks.
  if (cfg.backward) m.reference += tokens * (2 * H + 3 * block) * d;
  return m;
}

std::string validate(const Config& cfg, const LaunchFacts& launch) {
  const int T = cfg.tp_size, world = launch.world_size;
  const std::vector<Scheme> schemes = cfg.schemes();
  const bool runs_naive = std::find(schemes.begin(), schemes.end(), Scheme::naive) != schemes.end();
  std::ostringstream why;
  if (T > world) {
    why << "--tp-size " << T << " needs at least " << T << " MPI ranks, but this job has " << world
        << ": launch it as mpirun -np " << T << " ./tp_mlp --tp-size " << T;
  } else if (world % T != 0) {
    why << "--tp-size " << T << " must divide the number of MPI ranks (" << world
        << "): launch a multiple of " << T << " ranks, or pick a --tp-size that divides " << world;
  } else if (cfg.intermediate_size() % T != 0) {
    why << "--tp-size " << T << " must divide the intermediate size 4 x --hidden-size = "
        << cfg.intermediate_size() << ", which W1's columns and W2's rows are split along";
  } else if (cfg.hidden_size % T != 0 && runs_naive) {
    why << "the naive scheme splits --hidden-size " << cfg.hidden_size << " over --tp-size " << T
        << " ranks, so T must divide H"
        << (cfg.scheme == "all" ? ": choose another size, or --scheme megatron to skip it" : "");
  } else if (cfg.sequence_parallel && cfg.scheme != "all" && cfg.scheme != "megatron") {
    why << "--sequence-parallel is a variant of the megatron scheme: use it with --scheme "
           "megatron or all, not " << cfg.scheme;
  } else if (cfg.sequence_parallel && cfg.tokens() % T != 0) {
    why << "--sequence-parallel splits the " << cfg.tokens()
        << " tokens (--batch-size x --seq-len) over --tp-size " << T
        << " ranks, so T must divide them";
  } else if (cfg.backward && cfg.scheme == "naive") {
    why << "--backward is implemented for megatron, megatron-sp and serial, not for --scheme naive";
  } else if (cfg.tokens() * cfg.intermediate_size() > INT_MAX) {
    why << "--batch-size x --seq-len x 4 x --hidden-size = "
        << cfg.tokens() * cfg.intermediate_size()
        << " elements exceeds the largest tensor MPI can send in one call (" << INT_MAX << ")";
  } else {
    const MemoryEstimate estimate = estimate_memory(cfg);
    const double per_rank = estimate.per_rank() + estimate.serial;  // rank 0, the largest
    const double needed = estimate.on_node(launch.ranks_on_this_node);
    if (needed > launch.available_bytes) {
      why << "this configuration needs about " << gib(needed) << " of memory on this node ("
          << gib(per_rank) << " on rank 0 with " << launch.ranks_on_this_node << " rank"
          << (launch.ranks_on_this_node == 1 ? "" : "s") << " here), but only "
          << gib(launch.available_bytes)
          << " is available: lower --hidden-size, --batch-size or --seq-len, raise --tp-size, "
             "or run fewer schemes with --scheme megatron";
    }
  }
  return why.str();
}

std::string check_output_paths(const Config& cfg) {
  namespace fs = std::filesystem;
  // Writes and removes the temporary file the real output will be written to first.
  auto probe = [](const std::string& path) -> std::string {
    const std::string temporary = path + ".tmp";
    std::FILE* file = std::fopen(temporary.c_str(), "w");
    if (!file) return std::strerror(errno);
    std::fclose(file);
    std::remove(temporary.c_str());
    return "";
  };
  if (!cfg.tensors_dir.empty()) {
    std::error_code ec;
    fs::create_directories(cfg.tensors_dir, ec);
    std::string why = ec ? ec.message() : probe((fs::path(cfg.tensors_dir) / "x.npy").string());
    if (!why.empty()) return "--save-tensors " + cfg.tensors_dir + ": cannot write there (" + why + ")";
  }
  if (!cfg.json_path.empty()) {
    std::string why = fs::is_directory(cfg.json_path) ? "it is a directory" : probe(cfg.json_path);
    if (!why.empty()) return "--json " + cfg.json_path + ": cannot write there (" + why + ")";
  }
  return "";
}

}  // namespace tp_mlp
