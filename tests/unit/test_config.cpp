// Command-line parsing and validation: every refusal names the flag and what is allowed.
#include <gtest/gtest.h>

#include "tp_mlp/cli.hpp"
#include "tp_mlp/memory.hpp"
#include "tp_mlp/output_paths.hpp"
#include "tp_mlp/saved_tensors.hpp"
#include "tp_mlp/validate.hpp"

using namespace tp_mlp;

namespace {

ParsedArgs parse(std::vector<const char*> args) {
  args.insert(args.begin(), "tp_mlp");
  return parse_args(int(args.size()), args.data());
}

std::string check(const std::vector<const char*>& args, int world) {
  ParsedArgs parsed = parse(args);
  EXPECT_TRUE(parsed.config.has_value()) << parsed.text;
  return validate(*parsed.config, world);
}

// What the program answers a command line with before it runs anything, in main.cpp's order
// (run() and objection()): CLI11's parse, then validate() and rank 0's output paths, for
// `world` ranks. The memory check comes after them, against the run's plan, which needs MPI to
// build: tests/unit/test_workspace.cpp checks it in-process, and the whole-program test
// (tests/mpi/cases.py, bad_input_fails_fast) launches it with one command line per way of
// refusing; here every other command line of the corpus is checked.
struct Answer {
  bool parsed = false;  // false: CLI11 refused it, with exit_code
  int exit_code = 0;
  std::string text;  // empty: it would run
};

Answer answer(const std::vector<const char*>& args, int world) {
  const ParsedArgs parsed = parse(args);
  if (!parsed.config) return {false, parsed.exit_code, parsed.text};
  const Config& cfg = *parsed.config;
  std::string why = validate(cfg, world);
  if (why.empty()) why = check_output_paths(cfg, saved_tensor_names(cfg));
  return {true, 0, why};
}

long occurrences(const std::string& text, const std::string& part) {
  long count = 0;
  for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + part.size()))
    ++count;
  return count;
}

}  // namespace

TEST(Config, DefaultsMirrorTheScript) {
  const ParsedArgs parsed = parse({});
  ASSERT_TRUE(parsed.config);
  const Config& cfg = *parsed.config;
  EXPECT_EQ(cfg.tp_size, 4);
  EXPECT_EQ(cfg.hidden_size, 64);
  EXPECT_EQ(cfg.batch_size, 4);
  EXPECT_EQ(cfg.seq_len, 16);
  EXPECT_EQ(cfg.iterations, 100);
  EXPECT_EQ(cfg.warmup, 10);
  EXPECT_EQ(cfg.intermediate_size(), 256);
  EXPECT_EQ(cfg.schemes().size(), 3u);
}

TEST(Config, ZeroItselfIsAWholeNumber) {
  const ParsedArgs parsed = parse({"--seed", "0", "--warmup", "0"});
  ASSERT_TRUE(parsed.config) << parsed.text;
  EXPECT_EQ(parsed.config->seed, 0u);
  EXPECT_EQ(parsed.config->warmup, 0);
}

TEST(Config, ShortAndLongFlags) {
  const ParsedArgs parsed =
      parse({"-t", "2", "-H", "128", "-b", "3", "-s", "5", "--scheme", "naive"});
  ASSERT_TRUE(parsed.config);
  EXPECT_EQ(parsed.config->tp_size, 2);
  EXPECT_EQ(parsed.config->hidden_size, 128);
  EXPECT_EQ(parsed.config->tokens(), 15);
  EXPECT_EQ(parsed.config->schemes(), std::vector<Scheme>{Scheme::naive});
}

TEST(Config, HelpIsTextWithExitZero) {
  const ParsedArgs parsed = parse({"--help"});
  EXPECT_FALSE(parsed.config);
  EXPECT_EQ(parsed.exit_code, 0);
  EXPECT_FALSE(parsed.text_is_error);
  EXPECT_NE(parsed.text.find("--tp-size"), std::string::npos);
}

TEST(Config, ParseErrorsNameTheFlagAndRange) {
  struct Case {
    std::vector<const char*> args;
    const char* expected;
  };
  const std::vector<Case> cases = {
      {{"--tp-size", "0"}, "--tp-size: must be a whole number in 1..4096, not '0'"},
      {{"--hidden-size", "-5"}, "--hidden-size: must be a whole number in 1..1048576"},
      {{"--batch-size", "2.5"}, "--batch-size: must be a whole number"},
      {{"--seq-len", "abc"}, "--seq-len: must be a whole number"},
      {{"--iterations", "0"}, "--iterations: must be a whole number in 1..1000000"},
      {{"--seed", "-1"}, "--seed: must be a whole number in 0..18446744073709551615"},
      // Never octal (010 would be 8) nor hexadecimal: every number is plain decimal.
      {{"--hidden-size", "010"}, "--hidden-size: must be a whole number in 1..1048576, not '010'"},
      {{"--hidden-size", "08"}, "--hidden-size: must be a whole number in 1..1048576, not '08'"},
      {{"--seed", "0123"}, "--seed: must be a whole number in 0..18446744073709551615, not '0123'"},
      {{"--seed", "0x10"}, "--seed: must be a whole number in 0..18446744073709551615, not '0x10'"},
      {{"--tp-size", "+2"}, "--tp-size: must be a whole number in 1..4096, not '+2'"},
      {{"--scheme", "fast"}, "--scheme"},
      {{"--tp-size", "2", "--tp-size", "2"}, "--tp-size"},
      {{"--no-such-flag"}, "--no-such-flag"},
  };
  for (const Case& c : cases) {
    const ParsedArgs parsed = parse(c.args);
    EXPECT_FALSE(parsed.config) << c.args[0];
    EXPECT_NE(parsed.exit_code, 0) << c.args[0];
    EXPECT_TRUE(parsed.text_is_error);
    EXPECT_NE(parsed.text.find(c.expected), std::string::npos) << parsed.text;
  }
}

TEST(Config, ValidRunsPass) {
  EXPECT_EQ(check({"-t", "4", "-H", "256"}, 4), "");
  EXPECT_EQ(check({"-t", "2"}, 4), "");  // two groups of two
  EXPECT_EQ(check({"-t", "1"}, 1), "");
  EXPECT_EQ(check({"-t", "3", "-H", "6", "--scheme", "megatron"}, 3), "");  // 4H = 24 splits 3 ways
}

TEST(Config, RankCountMustBeAMultipleOfTpSize) {
  EXPECT_NE(check({"-t", "4"}, 2).find("--tp-size 4 needs at least 4 MPI ranks"),
            std::string::npos);
  EXPECT_NE(check({"-t", "2"}, 3).find("must divide the number of MPI ranks (3)"),
            std::string::npos);
}

TEST(Config, UnevenShardsAreFine) {
  // Nothing needs to divide by T: F = 64 over 3 ranks, H = 6 over 4 (naive), 3 tokens over 2.
  EXPECT_EQ(check({"-t", "3", "-H", "16"}, 3), "");
  EXPECT_EQ(check({"-t", "4", "-H", "6"}, 4), "");
  EXPECT_EQ(check({"-t", "2", "-b", "1", "-s", "3", "--sequence-parallel"}, 2), "");
  EXPECT_EQ(check({"-t", "3", "-H", "64", "--activation", "swiglu", "--ffn-hidden-size", "170"}, 3),
            "");
}

TEST(Config, ARankWithNothingToHoldIsRefused) {
  EXPECT_NE(check({"-t", "4", "--ffn-hidden-size", "3"}, 4).find("a rank would hold no columns"),
            std::string::npos);
  // naive also splits H itself: H = 3 over 4 ranks leaves one without rows.
  EXPECT_NE(check({"-t", "4", "-H", "3"}, 4).find("naive scheme"), std::string::npos);
  EXPECT_NE(check({"-t", "4", "-H", "3"}, 4).find("--scheme megatron"), std::string::npos);
  EXPECT_EQ(check({"-t", "4", "-H", "3", "--scheme", "megatron"}, 4), "");
  EXPECT_NE(check({"-t", "2", "-b", "1", "-s", "1", "--sequence-parallel"}, 2).find("no tokens"),
            std::string::npos);
}

TEST(Config, ActivationAndFfnWidth) {
  const ParsedArgs swiglu = parse({"--activation", "swiglu", "-H", "4096"});
  ASSERT_TRUE(swiglu.config);
  EXPECT_EQ(swiglu.config->intermediate_size(), 11008);  // LLaMA's rule by default
  EXPECT_EQ(swiglu.config->projections(), 2);
  const ParsedArgs set = parse({"--activation", "swiglu", "-H", "64", "--ffn-hidden-size", "170"});
  ASSERT_TRUE(set.config);
  EXPECT_EQ(set.config->intermediate_size(), 170);
  const ParsedArgs bad = parse({"--activation", "relu"});
  EXPECT_FALSE(bad.config);
  EXPECT_NE(bad.text.find("--activation: relu not in {gelu,swiglu}"), std::string::npos)
      << bad.text;
  const ParsedArgs zero = parse({"--ffn-hidden-size", "0"});
  EXPECT_FALSE(zero.config);
  EXPECT_NE(zero.text.find("--ffn-hidden-size: must be a whole number in 1..4194304, not '0'"),
            std::string::npos)
      << zero.text;
}

TEST(Memory, TheRefusalSaysWhatIsNeededAndWhatIsAvailable) {
  constexpr double kGiB = 1024.0 * 1024 * 1024;
  EXPECT_EQ(memory_problem(2 * kGiB, 4 * kGiB, 2, 16 * kGiB), "");
  const std::string why = memory_problem(20 * kGiB, 40 * kGiB, 2, 16 * kGiB);
  EXPECT_NE(why.find("needs about 40.00 GiB of memory on this node"), std::string::npos) << why;
  EXPECT_NE(why.find("20.00 GiB on this rank with 2 ranks here"), std::string::npos) << why;
  EXPECT_NE(why.find("16.00 GiB is available"), std::string::npos) << why;
}

TEST(Config, MpiCountLimitIsChecked) {
  EXPECT_NE(check({"-t", "1", "-b", "1048576", "-s", "1048576"}, 1).find("MPI can send"),
            std::string::npos);
}

TEST(Config, AFaultThatWouldPlantNothingIsRefused) {
  // At T = 1, W2/T is W2 and b2 added on every rank is added once: verification would pass
  // although --help promises exit 4. Every fault is about shards, so each needs T >= 2.
  for (const auto& [name, fault] : faults()) {
    if (fault == Fault::none || fault == Fault::one_ulp || is_attention_fault(fault) ||
        is_layer_fault(fault))
      continue;
    const std::vector<const char*> args = {"--plant-fault", name.c_str(), "--bias", "--activation",
                                           "swiglu"};
    std::vector<const char*> one = {"-t", "1"}, two = {"-t", "2"};
    one.insert(one.end(), args.begin(), args.end());
    two.insert(two.end(), args.begin(), args.end());
    EXPECT_NE(check(one, 1).find("needs --tp-size 2 or more"), std::string::npos) << name;
    EXPECT_EQ(check(two, 2), "") << name;
  }
}

TEST(Config, OneUlpIsPlantedInTheInvariantSchemeAtAnyT) {
  EXPECT_NE(check({"-t", "1", "--plant-fault", "one-ulp"}, 1).find("add --invariant"),
            std::string::npos);
  EXPECT_EQ(check({"-t", "1", "--plant-fault", "one-ulp", "--invariant"}, 1), "");
}

TEST(Config, InvariantRefusesWhatItCannotCombineWith) {
  EXPECT_NE(
      check({"-t", "2", "--invariant", "--scheme", "naive"}, 2).find("naive stays the wrong way"),
      std::string::npos);
  EXPECT_NE(check({"-t", "2", "--invariant", "--dtype", "bf16", "--reduce-dtype", "bf16"}, 2)
                .find("--reduce-dtype bf16"),
            std::string::npos);
  EXPECT_EQ(check({"-t", "2", "--invariant", "--dtype", "bf16"}, 2), "");  // plain ones: bf16
  // F = 12 is one block of 8 and one of 4: two ranks at most.
  EXPECT_NE(check({"-t", "3", "-H", "3", "--invariant", "--scheme", "megatron"}, 3)
                .find("would leave a rank without one"),
            std::string::npos);
  EXPECT_EQ(check({"-t", "2", "-H", "3", "--invariant", "--scheme", "megatron"}, 2), "");
}

// The bad-input corpus: zero, negative, non-numeric, octal-looking and overflowing values for
// every flag, a TP size that does not fit the ranks, F or the tokens, more ranks needed than
// launched, memory beyond the machine, tensors beyond MPI's int counts, repeated and unknown
// flags, flags that need another, unwritable or empty output paths, a report that would be one
// of the saved tensors. Each at 2 ranks, as launched, is refused with the one message that
// names the flag (the fragment must appear exactly once), and CLI11's refusals exit 100..120.
TEST(Config, TheBadInputCorpusIsRefusedNamingTheFlag) {
  struct Case {
    std::vector<const char*> args;
    const char* message;
  };
  const std::vector<Case> corpus = {
      {{"--tp-size", "0"}, "--tp-size: must be a whole number in 1..4096, not '0'"},
      {{"--tp-size", "-2"}, "--tp-size: must be a whole number in 1..4096, not '-2'"},
      {{"--tp-size", "two"}, "--tp-size: must be a whole number in 1..4096, not 'two'"},
      {{"--tp-size", "4"}, "--tp-size 4 needs at least 4 MPI ranks, but this job has 2"},
      {{"--tp-size", "3"}, "--tp-size 3 needs at least 3 MPI ranks"},
      {{"--tp-size", "2", "--hidden-size", "0"},
       "--hidden-size: must be a whole number in 1..1048576, not '0'"},
      {{"--tp-size", "2", "--hidden-size", "1.5"},
       "--hidden-size: must be a whole number in 1..1048576, not '1.5'"},
      {{"--tp-size", "2", "--hidden-size", "99999999999999999999"},
       "--hidden-size: must be a whole number"},
      {{"--tp-size", "2", "--batch-size", "0"},
       "--batch-size: must be a whole number in 1..1048576"},
      {{"--tp-size", "2", "--batch-size", "-1"},
       "--batch-size: must be a whole number in 1..1048576"},
      {{"--tp-size", "2", "--seq-len", "0"}, "--seq-len: must be a whole number in 1..1048576"},
      {{"--tp-size", "2", "--seq-len", "x"}, "--seq-len: must be a whole number in 1..1048576"},
      {{"--tp-size", "2", "--iterations", "0"},
       "--iterations: must be a whole number in 1..1000000"},
      {{"--tp-size", "2", "--warmup", "-1"}, "--warmup: must be a whole number in 0..1000000"},
      {{"--tp-size", "2", "--seed", "-1"},
       "--seed: must be a whole number in 0..18446744073709551615"},
      {{"--tp-size", "2", "--scheme", "fastest"},
       "--scheme: fastest not in {megatron,naive,serial,all}"},
      {{"--tp-size", "2", "--tp-size", "2"}, "--tp-size: At Most 1 required but received 2"},
      {{"--tp-size", "2", "--no-such-flag"}, "--no-such-flag"},
      {{"--tp-size", "2", "--hidden-size", "1", "--scheme", "naive"},
       "the naive scheme splits --hidden-size 1 over --tp-size 2 ranks: a rank would hold no rows"},
      {{"--tp-size", "2", "--ffn-hidden-size", "1"},
       "--tp-size 2 is more than the FFN width F = 1"},
      {{"--tp-size", "2", "--ffn-hidden-size", "0"},
       "--ffn-hidden-size: must be a whole number in 1..4194304, not '0'"},
      {{"--tp-size", "2", "--ffn-hidden-size", "x"},
       "--ffn-hidden-size: must be a whole number in 1..4194304, not 'x'"},
      {{"--tp-size", "2", "--activation", "relu"}, "--activation: relu not in {gelu,swiglu}"},
      {{"--tp-size", "2", "--activation", "swiglu", "--activation", "gelu"}, "--activation"},
      {{"--tp-size", "2", "--batch-size", "1048576", "--seq-len", "1048576", "--hidden-size",
        "1048576"},
       "exceeds the largest tensor MPI can send"},
      {{"--tp-size", "2", "--sequence-parallel", "--batch-size", "1", "--seq-len", "1"},
       "--sequence-parallel splits the 1 tokens (--batch-size x --seq-len) over --tp-size 2 ranks: "
       "a rank would hold no tokens"},
      {{"--tp-size", "2", "--sequence-parallel", "--scheme", "naive"},
       "--sequence-parallel is a variant of the megatron scheme"},
      {{"--tp-size", "2", "--backward", "--scheme", "naive"},
       "--backward is implemented for megatron, megatron-sp and serial"},
      {{"--tp-size", "2", "--backward", "--backward"}, "--backward"},
      {{"--tp-size", "2", "--json", "/nonexistent-dir/report.json"},
       "--json /nonexistent-dir/report.json: cannot write there"},
      {{"--tp-size", "2", "--json", "/"}, "--json /: cannot write there (it is a directory)"},
      {{"--tp-size", "2", "--save-tensors", "/proc/tp_mlp"},
       "--save-tensors /proc/tp_mlp: cannot write there"},
      // Numbers are decimal, always: a leading zero is not octal, it is refused.
      {{"--tp-size", "2", "--hidden-size", "010"},
       "--hidden-size: must be a whole number in 1..1048576, not '010'"},
      {{"--tp-size", "2", "--seed", "0123"},
       "--seed: must be a whole number in 0..18446744073709551615, not '0123'"},
      {{"--tp-size", "2", "--batch-size", "08"},
       "--batch-size: must be a whole number in 1..1048576, not '08'"},
      {{"--tp-size", "2", "--dtype", "fp16"}, "--dtype: fp16 not in {fp32,bf16}"},
      {{"--tp-size", "2", "--reduce-dtype", "bf16"},
       "--reduce-dtype bf16 rounds the partial sums of an --dtype fp32 model"},
      {{"--tp-size", "2", "--timeout", "0"},
       "--timeout: must be a whole number in 1..604800, not '0'"},
      {{"--tp-size", "2", "--plant-fault", "typo"},
       "--plant-fault: typo not in "
       "{none,missing-partial-sum,duplicate-shard,bias-on-every-rank,w2-over-t,gate-up-split,one-"
       "ulp,kv-grad-not-summed,wrong-kv-head,norm-grad-not-summed}"},
      {{"--tp-size", "2", "--plant-fault", "gate-up-split"},
       "--plant-fault gate-up-split needs --activation swiglu"},
      {{"--tp-size", "2", "--plant-fault", "bias-on-every-rank"},
       "--plant-fault bias-on-every-rank needs --bias"},
      {{"--tp-size", "2", "--plant-fault", "w2-over-t", "--scheme", "naive"},
       "--plant-fault w2-over-t is planted in the megatron scheme"},
      {{"--tp-size", "2", "--overlap-chunks", "0"},
       "--overlap-chunks: must be a whole number in 1..64, not '0'"},
      {{"--tp-size", "2", "--overlap-chunks", "65"},
       "--overlap-chunks: must be a whole number in 1..64, not '65'"},
      {{"--tp-size", "2", "--overlap", "--overlap-chunks", "x"},
       "--overlap-chunks: must be a whole number in 1..64, not 'x'"},
      {{"--tp-size", "2", "--overlap", "--overlap"}, "--overlap"},
      {{"--tp-size", "2", "--overlap-chunks", "4"},
       "--overlap-chunks 4 sets the chunks of megatron-overlap, which runs only with --overlap"},
      {{"--tp-size", "2", "--overlap", "--scheme", "naive"},
       "--overlap is a variant of the megatron scheme: use it with --scheme megatron or all, not "
       "naive"},
      {{"--tp-size", "2", "--overlap", "--overlap-chunks", "9", "--batch-size", "1", "--seq-len",
        "8"},
       "--overlap-chunks 9 splits the 8 tokens (--batch-size x --seq-len): a chunk would hold no "
       "tokens"},
      // An empty path is not "no output".
      {{"--tp-size", "2", "--json", ""}, "--json: must name a path, not ''"},
      {{"--tp-size", "2", "--save-tensors", ""}, "--save-tensors: must name a path, not ''"},
      {{"--tp-size", "2", "--save-tensors", "/tmp/tp_mlp_never_made", "--json",
        "/tmp/tp_mlp_never_made/y.npy"},
       "--json /tmp/tp_mlp_never_made/y.npy is y.npy of --save-tensors /tmp/tp_mlp_never_made"},
      // The attention block: its flags, the divisibility it needs, what it does not run yet.
      {{"--tp-size", "2", "--block", "transformer"},
       "--block: transformer not in {mlp,attention,layer}"},
      {{"--tp-size", "2", "--block", "attention", "--block", "mlp"}, "--block"},
      {{"--tp-size", "2", "--block", "attention", "--num-heads", "0"},
       "--num-heads: must be a whole number in 1..1048576, not '0'"},
      {{"--tp-size", "2", "--block", "attention", "--num-heads", "04"},
       "--num-heads: must be a whole number in 1..1048576, not '04'"},
      {{"--tp-size", "2", "--block", "attention", "--num-kv-heads", "-1"},
       "--num-kv-heads: must be a whole number in 1..1048576, not '-1'"},
      {{"--tp-size", "2", "--block", "attention", "--rope-theta", "0"},
       "--rope-theta: must be a real number > 0, not '0'"},
      {{"--tp-size", "2", "--block", "attention", "--rope-theta", "-10000"},
       "--rope-theta: must be a real number > 0, not '-10000'"},
      {{"--tp-size", "2", "--block", "attention", "--rope-theta", "inf"},
       "--rope-theta: must be a real number > 0, not 'inf'"},
      {{"--tp-size", "2", "--block", "attention", "--rope-theta", "0x1p4"},
       "--rope-theta: must be a real number > 0, not '0x1p4'"},
      {{"--tp-size", "2", "--block", "attention", "--rope-theta", "1e999"},
       "--rope-theta: must be a real number > 0, not '1e999'"},
      {{"--tp-size", "2", "--num-heads", "4"},
       "--num-heads shapes the attention block: add --block attention"},
      {{"--tp-size", "2", "--num-kv-heads", "1"},
       "--num-kv-heads shapes the attention block: add --block attention"},
      {{"--tp-size", "2", "--rope-theta", "500000"},
       "--rope-theta shapes the attention block: add --block attention"},
      {{"--tp-size", "2", "--block", "attention", "--num-heads", "3"},
       "--num-heads 3 must divide --hidden-size 64: each head takes d = H/N of its features"},
      {{"--tp-size", "2", "--block", "attention", "--hidden-size", "200"},
       "--num-heads 3 (the default, H/64) must divide --hidden-size 200"},
      {{"--tp-size", "2", "--block", "attention", "--hidden-size", "48", "--num-heads", "16"},
       "--hidden-size 48 / --num-heads 16 = 3 features per head, which must be even: RoPE turns "
       "them in pairs"},
      {{"--tp-size", "2", "--block", "attention", "--num-heads", "4", "--num-kv-heads", "3"},
       "--num-kv-heads 3 must divide --num-heads 4: each KV head serves N/K query heads"},
      {{"--tp-size", "2", "--block", "attention", "--num-heads", "4", "--num-kv-heads", "8"},
       "--num-kv-heads 8 must divide --num-heads 4"},
      {{"--tp-size", "2", "--block", "attention", "--scheme", "naive"},
       "--block attention has no naive scheme: use --scheme megatron, serial or all"},
      {{"--tp-size", "2", "--block", "attention", "--reduce-dtype", "bf16"},
       "--reduce-dtype bf16 rounds the partial sums of an --dtype fp32 model to bf16"},
      {{"--tp-size", "2", "--block", "layer", "--invariant", "--sequence-parallel"},
       "--invariant with --sequence-parallel is not built for --block layer"},
      {{"--tp-size", "2", "--block", "layer", "-H", "8", "--num-heads", "2", "--ffn-hidden-size",
        "8", "--invariant"},
       "--invariant cuts the FFN width F = 8 into 1 block of 8 columns, and each rank holds "
       "whole blocks: --tp-size 2 would leave a rank without one"},
      {{"--tp-size", "2", "--block", "attention", "--invariant", "--dtype", "bf16",
        "--reduce-dtype", "bf16"},
       "--invariant sums the partial sums exactly, as 64-bit integers: --reduce-dtype bf16"},
      {{"--tp-size", "2", "--block", "attention", "--plant-fault", "one-ulp"},
       "--plant-fault one-ulp is planted in megatron-inv's partial sums: add --invariant"},
      {{"--tp-size", "2", "--block", "attention", "--invariant", "--plant-fault",
        "missing-partial-sum"},
       "--plant-fault missing-partial-sum is a mistake of the MLP block's: with --block "
       "attention plant kv-grad-not-summed or wrong-kv-head (or one-ulp with --invariant)"},
      {{"--tp-size", "2", "--block", "attention", "--overlap"},
       "--overlap hides the MLP's all-reduces, and the attention block has none: with --block "
       "layer it overlaps the layer's MLP"},
      {{"--tp-size", "2", "--block", "attention", "--sequence-parallel", "-b", "1", "-s", "1"},
       "--sequence-parallel splits the 1 tokens (--batch-size x --seq-len) over --tp-size 2 ranks"},
      {{"--tp-size", "2", "--block", "attention", "--plant-fault", "w2-over-t"},
       "--plant-fault w2-over-t is a mistake of the MLP block's: with --block attention plant "
       "kv-grad-not-summed or wrong-kv-head"},
      {{"--tp-size", "2", "--plant-fault", "kv-grad-not-summed", "--backward"},
       "--plant-fault kv-grad-not-summed is a mistake of the attention block's: add --block "
       "attention"},
      {{"--tp-size", "2", "--block", "attention", "--plant-fault", "wrong-kv-head", "--scheme",
        "serial"},
       "--plant-fault wrong-kv-head is planted in the megatron scheme"},
      {{"--tp-size", "2", "--block", "attention", "--num-heads", "4", "--num-kv-heads", "1",
        "--plant-fault", "wrong-kv-head"},
       "--plant-fault wrong-kv-head needs --num-kv-heads 2 or more"},
      {{"--tp-size", "2", "--block", "attention", "--num-heads", "4", "--num-kv-heads", "1",
        "--plant-fault", "kv-grad-not-summed"},
       "--plant-fault kv-grad-not-summed needs --backward"},
      {{"--tp-size", "2", "--block", "attention", "--num-heads", "4", "--backward", "--plant-fault",
        "kv-grad-not-summed"},
       "--plant-fault kv-grad-not-summed needs a KV head held by several ranks, and 4 query heads "
       "with 4 KV heads over --tp-size 2 put each KV head's query heads on one rank"},
      {{"--tp-size", "2", "--block", "attention", "--batch-size", "1048576", "--seq-len",
        "1048576"},
       "the attention block's largest collective would hold"},
      // The layer: its own flag, the presets, what it does not run yet.
      {{"--tp-size", "2", "--block", "layer", "--norm", "batchnorm"},
       "--norm: batchnorm not in {rmsnorm,layernorm}"},
      {{"--tp-size", "2", "--block", "layer", "--norm", "rmsnorm", "--norm", "rmsnorm"}, "--norm"},
      {{"--tp-size", "2", "--norm", "rmsnorm"},
       "--norm chooses the layer's normalisation: add --block layer"},
      {{"--tp-size", "2", "--block", "attention", "--norm", "layernorm"},
       "--norm chooses the layer's normalisation: add --block layer"},
      {{"--tp-size", "2", "--model", "gpt3"},
       "--model: gpt3 not in {gpt2,llama3-8b,llama3-70b,mistral-7b,qwen2.5-7b}"},
      {{"--tp-size", "2", "--model", "gpt2", "--model", "gpt2"}, "--model"},
      {{"--tp-size", "2", "--block", "layer", "--ffn-hidden-size", "1"},
       "--tp-size 2 is more than the FFN width F = 1, which the layer's MLP is split along"},
      {{"--tp-size", "2", "--block", "layer", "--scheme", "naive"},
       "--block layer has no naive scheme"},
      {{"--tp-size", "2", "--block", "layer", "--reduce-dtype", "bf16"},
       "--reduce-dtype bf16 rounds the partial sums of an --dtype fp32 model to bf16"},
      {{"--tp-size", "2", "--block", "layer", "--sequence-parallel", "--scheme", "serial"},
       "--sequence-parallel is a variant of the megatron scheme: use it with --scheme megatron or "
       "all, not serial"},
      {{"--tp-size", "2", "--plant-fault", "norm-grad-not-summed"},
       "--plant-fault norm-grad-not-summed is a mistake of the layer's norms: add --block layer"},
      {{"--tp-size", "2", "--block", "attention", "--plant-fault", "norm-grad-not-summed"},
       "--plant-fault norm-grad-not-summed is a mistake of the layer's norms: add --block layer"},
      {{"--tp-size", "2", "--block", "layer", "--backward", "--plant-fault",
        "norm-grad-not-summed"},
       "--plant-fault norm-grad-not-summed needs --sequence-parallel"},
      {{"--tp-size", "2", "--block", "layer", "--sequence-parallel", "--plant-fault",
        "norm-grad-not-summed"},
       "--plant-fault norm-grad-not-summed needs --backward"},
      {{"--tp-size", "1", "--block", "layer", "--sequence-parallel", "--backward", "--plant-fault",
        "norm-grad-not-summed"},
       "--plant-fault norm-grad-not-summed needs --tp-size 2 or more"},
      {{"--tp-size", "2", "--block", "layer", "--overlap", "--scheme", "serial"},
       "--overlap is a variant of the megatron scheme: use it with --scheme megatron or all, not "
       "serial"},
      {{"--tp-size", "2", "--block", "layer", "--overlap-chunks", "2"},
       "--overlap-chunks 2 sets the chunks of megatron-overlap, which runs only with --overlap"},
      {{"--tp-size", "2", "--block", "layer", "--plant-fault", "one-ulp"},
       "--plant-fault one-ulp is planted in megatron-inv's partial sums: add --invariant"},
      {{"--tp-size", "1", "--block", "layer", "--plant-fault", "w2-over-t"},
       "--plant-fault w2-over-t needs --tp-size 2 or more"},
      {{"--tp-size", "2", "--block", "layer", "--num-heads", "4", "--plant-fault",
        "kv-grad-not-summed"},
       "--plant-fault kv-grad-not-summed needs --backward"},
      {{"--tp-size", "2", "--block", "layer", "--model", "qwen2.5-7b", "--num-heads", "14"},
       "--num-kv-heads 4 must divide --num-heads 14"},
      // Found before the run, not when the report is written after it and the tensors.
      {{"--tp-size", "2", "--save-tensors", "/tmp/tp_mlp_never_made/run", "--json",
        "/tmp/tp_mlp_never_made"},
       "--json /tmp/tp_mlp_never_made is a directory of --save-tensors "
       "/tmp/tp_mlp_never_made/run"},
  };
  constexpr int kRanks = 2;
  for (const Case& c : corpus) {
    std::string line;
    for (const char* arg : c.args) line += std::string(" ") + arg;
    const Answer a = answer(c.args, kRanks);
    EXPECT_EQ(occurrences(a.text, c.message), 1)
        << "tp_mlp" << line << "\nshould say once: " << c.message << "\nsaid: " << a.text;
    if (!a.parsed) {
      EXPECT_GE(a.exit_code, 100) << line;
      EXPECT_LE(a.exit_code, 120) << line;
    }
  }
  // The check can fail: a command line that runs is answered with nothing.
  EXPECT_EQ(answer({"--tp-size", "2"}, kRanks).text, "");
}

// A preset gives its model's shapes, of the chosen block only; a flag given overrides it.
TEST(Config, ModelPresetsSetShapesAndFlagsOverride) {
  const ParsedArgs layer = parse({"-t", "2", "--block", "layer", "--model", "qwen2.5-7b"});
  ASSERT_TRUE(layer.config) << layer.text;
  EXPECT_EQ(layer.config->hidden_size, 3584);
  EXPECT_EQ(layer.config->intermediate_size(), 18944);
  EXPECT_EQ(layer.config->heads(), 28);
  EXPECT_EQ(layer.config->kv_heads(), 4);
  EXPECT_EQ(layer.config->activation, Activation::swiglu);
  EXPECT_EQ(layer.config->norm_kind(), NormKind::rms);
  EXPECT_EQ(layer.config->rope_base(), 1e6);
  const ParsedArgs overridden = parse({"-t", "2", "--block", "layer", "--model", "gpt2", "-H",
                                       "128", "--num-heads", "2", "--norm", "rmsnorm"});
  ASSERT_TRUE(overridden.config) << overridden.text;
  EXPECT_EQ(overridden.config->hidden_size, 128);
  EXPECT_EQ(overridden.config->intermediate_size(), 3072);  // the preset's F stays
  EXPECT_EQ(overridden.config->heads(), 2);
  EXPECT_EQ(overridden.config->kv_heads(), 12);
  EXPECT_EQ(overridden.config->norm_kind(), NormKind::rms);
  const ParsedArgs mlp = parse({"-t", "2", "--model", "llama3-8b"});
  ASSERT_TRUE(mlp.config) << mlp.text;
  EXPECT_EQ(mlp.config->hidden_size, 4096);
  EXPECT_EQ(mlp.config->intermediate_size(), 14336);
  EXPECT_EQ(mlp.config->num_heads, 0);  // the MLP block has no heads to set
  EXPECT_FALSE(mlp.config->rope_theta);
  EXPECT_FALSE(mlp.config->norm);
}

TEST(Config, AttentionFlagsSetTheHeads) {
  const ParsedArgs parsed = parse({"-t", "2", "-H", "96", "--block", "attention", "--num-heads",
                                   "3", "--num-kv-heads", "1", "--rope-theta", "5e5"});
  ASSERT_TRUE(parsed.config) << parsed.text;
  const Config& cfg = *parsed.config;
  EXPECT_EQ(cfg.block, BlockKind::attention);
  EXPECT_EQ(cfg.heads(), 3);
  EXPECT_EQ(cfg.kv_heads(), 1);
  EXPECT_EQ(cfg.head_size(), 32);
  EXPECT_EQ(cfg.rope_base(), 500000.0);
  EXPECT_EQ(validate(cfg, 2), "");
  // Defaults: H/64 query heads, as many KV heads, LLaMA's base; no naive scheme.
  const ParsedArgs plain = parse({"-t", "2", "-H", "256", "--block", "attention"});
  ASSERT_TRUE(plain.config) << plain.text;
  EXPECT_EQ(plain.config->heads(), 4);
  EXPECT_EQ(plain.config->kv_heads(), 4);
  EXPECT_EQ(plain.config->rope_base(), 10000.0);
  EXPECT_EQ(plain.config->schemes(), (std::vector<Scheme>{Scheme::megatron, Scheme::serial}));
  EXPECT_EQ(validate(*plain.config, 2), "");
}

TEST(Config, AttentionNeedsNeitherNDivisibleByTNorAHeadPerRank) {
  // Uneven heads (3 over 2 ranks), fewer KV heads than ranks, and fewer heads than ranks.
  EXPECT_EQ(check({"-t", "2", "--block", "attention", "-H", "96", "--num-heads", "3"}, 2), "");
  EXPECT_EQ(check({"-t", "4", "--block", "attention", "-H", "64", "--num-heads", "8",
                   "--num-kv-heads", "1", "--backward", "--plant-fault", "kv-grad-not-summed"},
                  4),
            "");
  EXPECT_EQ(check({"-t", "4", "--block", "attention", "-H", "64", "--num-heads", "2"}, 4), "");
  EXPECT_EQ(check({"-t", "1", "--block", "attention", "-H", "64", "--num-heads", "4",
                   "--num-kv-heads", "2", "--plant-fault", "wrong-kv-head"},
                  1),
            "");
}
