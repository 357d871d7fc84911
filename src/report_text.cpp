// report_text: the text sections (see report_text.hpp).
#include "tp_mlp/report_text.hpp"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

#include "tp_mlp/attention_verify.hpp"
#include "tp_mlp/invariant_blocking.hpp"
#include "tp_mlp/layer_verify.hpp"
#include "tp_mlp/models.hpp"

namespace tp_mlp {
namespace {

constexpr int kRule = 60;  // the script's section width

void section(const char* title) {
  const std::string rule(kRule, '=');
  std::printf("\n%s\n %s\n%s\n", rule.c_str(), title, rule.c_str());
}

std::string bytes_text(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  while (std::fabs(bytes) >= 1024.0 && unit < 4) {
    bytes /= 1024.0;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, unit ? "%.1f %s" : "%.0f %s", bytes, units[unit]);
  return text;
}

std::string grouped(long n) {  // 1234567 -> "1,234,567"
  std::string digits = std::to_string(n), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string shape_text(const Config& cfg) {
  return "[" + std::to_string(cfg.batch_size) + ", " + std::to_string(cfg.seq_len) + ", " +
         std::to_string(cfg.hidden_size) + "]";
}

const char* yes_no(bool b) { return b ? "True" : "False"; }

// "1 all-gather + 1 reduce-scatter", as counted.
std::string collectives_text(const CommStats& s) {
  std::string text;
  for (Collective kind : kCollectives) {
    if (!s[kind].calls) continue;
    text +=
        (text.empty() ? "" : " + ") + std::to_string(s[kind].calls) + " " + collective_name(kind);
  }
  return text.empty() ? "none" : text;
}

void print_verification_row(Scheme scheme, const Verification& v) {
  std::printf("  %-20s %-8s %10.2e %13.2e %11.2e %11.2e  %s\n", scheme_name(scheme),
              v.tensor.c_str(), v.max_abs_diff, v.max_rel_diff, v.tolerance, v.max_diff_over_bound,
              yes_no(v.passed));
}

// "  F = 170 over 3 ranks (W1's columns ...): 57 columns on ranks 0-1, 56 on rank 2"
void print_share(const char* length, const char* unit, const Share& s, const char* what) {
  auto ranks = [](int first, int last) {
    return first == last ? "rank " + std::to_string(first)
                         : "ranks " + std::to_string(first) + "-" + std::to_string(last);
  };
  std::printf("  %s = %ld over %d rank%s (%s): ", length, s.length, s.ranks,
              s.ranks == 1 ? "" : "s", what);
  if (s.even())
    std::printf("%ld %s each\n", s.wide, unit);
  else
    std::printf("%ld %s on %s, %ld on %s\n", s.wide, unit, ranks(0, s.wide_ranks - 1).c_str(),
                s.wide - 1, ranks(s.wide_ranks, s.ranks - 1).c_str());
}

void print_params(const char* title, const ParamRow& p) {
  if (p.ffn_hidden_size == 4 * p.hidden_size)
    std::printf("\n%s: H=%ld, T=%d\n", title, p.hidden_size, p.tp_size);
  else
    std::printf("\n%s: H=%ld, F=%ld, T=%d\n", title, p.hidden_size, p.ffn_hidden_size, p.tp_size);
  std::printf("  Non-parallel: %s parameters (%s)\n", grouped(long(p.params.total)).c_str(),
              bytes_text(p.bytes_total).c_str());
  std::printf("  With %d-way TP: %s parameters (%s per rank)\n", p.tp_size,
              grouped(long(p.params.per_rank)).c_str(), bytes_text(p.bytes_per_rank).c_str());
}

// The layer's memory at T = 1, 2, 4, 8 for the run's shapes, and the run's own row.
void print_layer_scaling(const ScalingMetrics& m) {
  const AttentionHeads& a = *m.attention;
  std::printf(
      "For a pre-norm layer with hidden_size H, N query heads and K key/value heads of\n"
      "d = H/N, and FFN width F:\n"
      "  Non-parallel: attention 2H(N + K)d + the MLP %sHF + the norms' 2H (4H with\n"
      "  LayerNorm's biases) parameters\n"
      "  With TP degree T: each rank its query heads' Wq columns and Wo rows, the Wk, Wv\n"
      "  columns of the KV heads they use (a KV head that several ranks use is held by each:\n"
      "  2Hd more per replica), its columns of F, and the norms whole\n",
      m.activation == Activation::swiglu ? "3" : "2");
  std::printf(
      "\nThis run's shapes: H=%ld, N=%ld, K=%ld, F=%ld, at T = 1, 2, 4, 8 (the rank with the "
      "most):\n\n",
      m.run.hidden_size, a.query_heads, a.kv_heads, m.run.ffn_hidden_size);
  const double bytes = double(dtype_bytes(m.dtype));
  std::printf("  %3s %16s %12s %15s %14s %20s\n", "T", "params/rank", "weights", "KV heads held",
              "replicas add", "activations/rank");
  for (const LayerScale& s : m.layer)
    std::printf("  %3d %16s %12s %15ld %14s %20s\n", s.tp_size,
                grouped(long(s.params_per_rank)).c_str(),
                bytes_text(s.params_per_rank * bytes).c_str(), s.kv_heads_held,
                bytes_text(s.replica_params * bytes).c_str(),
                bytes_text(s.activations_per_rank * bytes).c_str());
  std::printf(
      "  (activations: what a forward keeps for the backward: X, Norm1(X), h, Norm2(h), Y\n"
      "   whole on every rank; its heads' Q, K, V, O; its columns' pre-activations and\n"
      "   activation. The replicated [tokens, H] tensors are why sequence parallelism exists.)\n");
  print_params("This run", m.run);
  print_share("N", "query heads", *m.shares.query_heads, "Wq's columns and Wo's rows");
  print_share("F", "columns", m.shares.ffn_columns, "W1's columns and W2's rows");
}

// What megatron-overlap hid of megatron's communication, beside the two bounds.
void print_overlap(const BenchmarkMetrics& m) {
  const OverlapChoice& o = *m.overlap;
  if (o.chunks == 1 && o.automatic && o.worth_hiding)
    std::printf(
        "\nmegatron-overlap: a bare all-reduce of Y costs %.1f%% of megatron's compute here, but\n"
        "2 chunks would hold fewer than %ld tokens each, too few for efficient GEMMs: it runs\n"
        "as megatron does (1 chunk, blocking collectives).\n",
        100 * o.comm_share, o.min_chunk_tokens);
  else if (o.chunks == 1)
    std::printf(
        "\nmegatron-overlap: a bare all-reduce of Y costs %.1f%% of megatron's compute here:\n"
        "nothing worth hiding, so it runs as megatron does (1 chunk, blocking collectives)%s.\n",
        100 * o.comm_share, o.automatic ? "" : ", as --overlap-chunks 1 asks");
  else
    std::printf(
        "\nmegatron-overlap: %d token chunks (%s; a bare all-reduce of Y costs %.1f%% of\n"
        "megatron's compute here), each chunk's all-reduce in flight while the next computes:\n",
        o.chunks, o.automatic ? "chosen" : "--overlap-chunks", 100 * o.comm_share);
  std::printf("\n  %-20s %-9s %10s %10s %10s %8s %12s %12s   (median ms)\n", "scheme", "step",
              "time", "compute", "comm", "hidden", "max(c, f)", "c + floor");
  auto row = [](const SchemeSpeed& s, const char* step, const StepTiming& t, const StepSpeed& v) {
    char hidden[16] = "-";
    if (v.hidden) std::snprintf(hidden, sizeof hidden, "%.0f%%", 100 * *v.hidden);
    std::printf("  %-20s %-9s %10.3f %10.3f %10.3f %8s %12.3f %12.3f\n", scheme_name(s.scheme),
                step, t.total.median, t.compute.median, t.comm.median, hidden,
                v.overlapped_bound_ms, v.bound_ms);
  };
  for (const SchemeSpeed& s : m.schemes) {
    if (s.scheme != Scheme::megatron && s.scheme != Scheme::megatron_overlap) continue;
    row(s, "forward", s.timing, s.forward);
    if (s.has_backward) row(s, "fwd+bwd", s.train_timing, s.train);
  }
  std::printf(
      "  (hidden = (megatron's time - time) / megatron's comm: what chunking costs counts\n"
      "   against it; the bounds are the compute at the peak and the floor, overlapped:\n"
      "   max(c, f), or one after the other: c + floor)\n");
}

std::string range_text(Block b) {  // "3", "2-4"
  if (b.count == 1) return std::to_string(b.first);
  return std::to_string(b.first) + "-" + std::to_string(b.end() - 1);
}

// The heads: how many, and which each rank of a group holds.
void print_attention_heads(const AttentionHeads& a) {
  std::printf("Heads: N = %ld query, K = %ld key/value", a.query_heads, a.kv_heads);
  if (a.kv_heads < a.query_heads)
    std::printf(" (grouped-query: %ld query heads per KV head)", a.query_heads / a.kv_heads);
  std::printf(", d = %ld; RoPE theta %g\n", a.head_size, a.rope_theta);
  for (std::size_t r = 0; r < a.ranks.size(); ++r) {
    const HeadShard& h = a.ranks[r];
    if (h.query.count == 0) {
      std::printf("  rank %zu: no head (N < T): zeros into every collective\n", r);
      continue;
    }
    std::printf("  rank %zu: query head%s %s, KV head%s %s\n", r, h.query.count == 1 ? "" : "s",
                range_text(h.query).c_str(), h.kv.count == 1 ? "" : "s", range_text(h.kv).c_str());
  }
  if (a.replicated.empty()) {
    std::printf("  no KV head is replicated: each is held by one rank\n");
    return;
  }
  std::printf("  replicated KV heads (held by several ranks, their Wk, Wv gradients summed):");
  for (const long kv : a.replicated) {
    int first = -1, last = -1;
    for (std::size_t r = 0; r < a.ranks.size(); ++r) {
      const Block held = a.ranks[r].kv;
      if (kv < held.first || kv >= held.end()) continue;
      if (first < 0) first = int(r);
      last = int(r);
    }
    std::printf(" %ld (ranks %d-%d)", kv, first, last);
  }
  std::printf("\n");
}

// The attention block's (the layer's) collectives against their formulas, as counted in one pass.
void print_attention_traffic(const AttentionTraffic& a) {
  if (a.layer)
    std::printf(
        "\nThe layer (megatron), formulas against what one pass counted:\n"
        "  forward   attention's and the MLP's all-reduces of Y, 2 x tokens x H x %ld B: %s\n",
        a.y_element_bytes, bytes_text(double(a.y_bytes)).c_str());
  else
    std::printf(
        "\nThe attention block (megatron), formulas against what one pass counted:\n"
        "  forward   Y's all-reduce, tokens x H x %ld B:                     %s\n",
        a.y_element_bytes, bytes_text(double(a.y_bytes)).c_str());
  std::printf("            counted: %s, %s\n", collectives_text(a.forward).c_str(),
              bytes_text(double(a.forward.bytes())).c_str());
  if (a.has_backward) {
    if (a.layer)
      std::printf(
          "  backward  the MLP's and attention's all-reduces of dX, 2 x tokens x H x %ld B: %s\n",
          a.y_element_bytes, bytes_text(double(a.y_bytes)).c_str());
    else
      std::printf("  backward  dX's all-reduce, tokens x H x %ld B:                    %s\n",
                  a.y_element_bytes, bytes_text(double(a.y_bytes)).c_str());
    if (a.replica_bytes > 0)
      std::printf(
          "            replicated KV heads' dWk, dWv (and dbk, dbv), summed over the group,\n"
          "            zeros from the ranks without the head: (H + bias) x 2 x R x d x 4 B: %s\n",
          bytes_text(double(a.replica_bytes)).c_str());
    else
      std::printf("            no KV head replicated: no gradient to sum\n");
    std::printf("            counted: %s, %s\n", collectives_text(a.backward).c_str(),
                bytes_text(double(a.backward.bytes())).c_str());
  }
  std::printf("  = formula: %s\n", a.matches_formula ? "yes" : "NO");
}

}  // namespace

void TextReport::banner(const Config& cfg, const Launch& launch) const {
  if (!prints_) return;
  const bool attention = cfg.block == BlockKind::attention, layer = cfg.block == BlockKind::layer;
  const std::string title = layer       ? "TENSOR-PARALLEL TRANSFORMER LAYER"
                            : attention ? "TENSOR-PARALLEL ATTENTION BLOCK"
                                        : "TENSOR-PARALLEL MLP BLOCK";
  const int inner = kRule - 2, left = (inner - int(title.size())) / 2;
  std::string bar;
  for (int i = 0; i < inner; ++i) bar += "═";
  std::printf("╔%s╗\n║%*s%s%*s║\n╚%s╝\n", bar.c_str(), left, "", title.c_str(),
              inner - left - int(title.size()), "", bar.c_str());
  std::printf("\nTP degree: %d (%d MPI rank%s: %d group%s of %d)\n", cfg.tp_size, launch.world_size,
              launch.world_size == 1 ? "" : "s", launch.tp_groups, launch.tp_groups == 1 ? "" : "s",
              cfg.tp_size);
  if (const ModelPreset* preset = find_model(cfg.model))
    std::printf("Shapes of: %s (%s; flags given override it)\n", preset->name.c_str(),
                preset->configuration);
  std::printf("Hidden size: %d\n", cfg.hidden_size);
  if (!attention) std::printf("Intermediate size: %ld\n", cfg.intermediate_size());
  std::printf("Tokens: batch %d x seq %d = %ld\n", cfg.batch_size, cfg.seq_len, cfg.tokens());
  const char* passes = cfg.backward ? ", forward and backward" : ", forward";
  if (layer) {
    const bool centred = cfg.norm_kind() == NormKind::layer;
    std::printf("Model: Y = h + MLP(Norm2(h)), h = X + Attention(Norm1(X))%s\n", passes);
    std::printf("  Norm1, Norm2: %s (eps 1e-5) with a weight%s, on every rank, whole\n",
                centred ? "LayerNorm" : "RMSNorm", centred ? " and a bias" : "");
  }
  // Each block's formula: the model's, or the layer's part.
  const char* attention_is = layer ? "  Attention(X) = " : "Model: Y = ";
  const char* mlp_is = layer ? "  MLP(X) = " : "Model: Y = ";
  const char* block_passes = layer ? "" : passes;
  const char* b = cfg.bias ? " + b" : "";
  if (attention || layer) {
    std::printf(
        "%sO.Wo%s, O = causal softmax(RoPE(Q).RoPE(K)^T / sqrt(d)).V per sequence\n"
        "  and head, Q = X.Wq%s, K = X.Wk%s, V = X.Wv%s%s\n",
        attention_is, cfg.bias ? " + bo" : "", b, b, b, block_passes);
  }
  const char* b1 = cfg.bias ? " + b1" : "";
  const char* b2 = cfg.bias ? " + b2" : "";
  if (!attention && cfg.activation == Activation::swiglu)
    std::printf("%s(SiLU(X.W1%s) * (X.W3%s)).W2%s%s\n", mlp_is, b1, cfg.bias ? " + b3" : "", b2,
                block_passes);
  else if (!attention)
    std::printf("%sGeLU(X.W1%s).W2%s%s\n", mlp_is, b1, b2, block_passes);
  if (attention || layer) print_attention_heads(attention_heads(cfg));
  if (cfg.fault != Fault::none)
    std::printf("Planted fault: %s, in %s: its verification must fail\n", fault_name(cfg.fault),
                is_layer_fault(cfg.fault) ? "megatron-sp" : "megatron");
  if (cfg.dtype == DType::bf16)
    std::printf(
        "Precision: bf16 weights, activations and GEMM inputs; fp32 accumulation, %s and\n"
        "  weight gradients; partial sums reduced in %s\n",
        cfg.activation == Activation::swiglu ? "SiLU" : "GeLU", dtype_name(cfg.reduction()));
  std::printf("GEMM: %s, one thread per rank\n", launch.gemm_backend);
  if (cfg.dtype == DType::bf16) std::printf("GEMM (bf16): %s\n", launch.bf16_gemm);
  std::printf("FMA peak of one core: %.1f GFLOP/s (measured, %s: the GEMMs' widest vectors)\n",
              launch.peak_gflops, launch.peak_isa);
  if (launch.bf16_peak_gflops > 0)
    std::printf("bf16 dot-product peak of one core: %.1f GFLOP/s (measured, %s)\n",
                launch.bf16_peak_gflops, launch.amx_bf16 ? "AMX tiles" : "AVX512_BF16");
  else
    std::printf(
        "bf16: this CPU has no native bf16 arithmetic (no AVX512_BF16): bf16 products are\n"
        "  widened to fp32, and %% peak is against the FMA peak\n");
  std::fflush(stdout);
}

void TextReport::verification(const Config& cfg, const VerificationMetrics& m) const {
  if (!prints_) return;
  const Verification& lead = m.schemes.front().output;
  section("CORRECTNESS VERIFICATION");
  const bool attention = cfg.block == BlockKind::attention;
  const bool mlp = cfg.block == BlockKind::mlp;
  std::printf("\nReference: the same %s unsharded, in float64, %s\n",
              mlp ? "model" : block_name(cfg.block),
              mlp ? "split over ranks by tokens" : "whole on every rank");
  std::printf("Input shape: %s\nOutput shape: %s\n", shape_text(cfg).c_str(),
              shape_text(cfg).c_str());
  if (cfg.block == BlockKind::layer && cfg.dtype == DType::bf16) {
    std::printf(
        "Bound, end to end: Y and dX within 2^%d of their max|reference| (%.2e), for the\n"
        "layer's wiring (residuals, norms, blocks in order); bf16's roundings carried through\n"
        "both blocks and the norms move the weights' gradients too far on tiny layers for one\n"
        "cap (up to 30%% measured), so each is judged block by block, below, where its bound\n"
        "is derived. An element passes within it (diff/bound <= 1).\n\n",
        std::ilogb(LayerReference::kMistakeBf16), LayerReference::kMistakeBf16);
  } else if (cfg.block == BlockKind::layer) {
    std::printf(
        "Bound, end to end: every element within 2^-10 of its tensor's max|reference|\n"
        "(tolerance 9.77e-04): the cap attention's rigorous bound ends at, taken for the whole\n"
        "layer. Measured, not proved: ~1000x float's error at every size run, ~1000x below\n"
        "every planted sharding mistake's (layer_verify.hpp); block by block, below, each\n"
        "part's bound is derived. An element passes within it (diff/bound <= 1).\n\n");
  } else if (attention) {
    const bool bf16 = cfg.dtype == DType::bf16;
    std::printf(
        "Bound: each element's float error carried through every step: gamma_n x sum|terms|\n"
        "for a sum of n terms (n up to %ld for Y), u = 2^-24; RoPE's rotation; the scores;\n"
        "the softmax (probabilities within e^(2 Delta) of the exact ones when every score of\n"
        "the row is within Delta) and its backward; the T partial sums%s. First order in the\n"
        "errors, so doubled; and never more than 2^%d of its tensor's max|reference|\n"
        "(%s), where the worst case compounds past that\n"
        "(attention_verify.hpp). An element passes within its own bound (diff/bound <= 1);\n"
        "tolerance is the loosest bound / max|reference| (%.2e where the cap decides).\n\n",
        lead.accumulated_terms,
        bf16 ? "; O and dQKV rounded to\nbf16 as they enter a GEMM, Y and dX as they leave "
               "(2^-8 each)"
             : "",
        std::ilogb(AttentionReference::mistake(cfg.dtype)),
        bf16 ? "about 6x bf16's measured error" : "about 1000x float's measured error",
        AttentionReference::mistake(cfg.dtype));
  } else {
    std::printf(
        "Bound: each element may differ from the reference by at most what float rounding can do\n"
        "to it: gamma_n x sum|terms| for a sum of n terms (n up to %ld for Y), u = 2^-24, carried\n"
        "through the activation with its slope and its own float error. An element passes within\n"
        "its own bound (diff/bound <= 1); tolerance is the loosest bound / max|reference|.\n\n",
        lead.accumulated_terms);
  }
  std::printf("  %-20s %-8s %10s %13s %11s %11s  %s\n", "scheme", "", "max abs diff",
              "max rel diff", "tolerance", "diff/bound", "correct");
  for (const SchemeChecks& s : m.schemes) print_verification_row(s.scheme, s.output);
  if (m.any_gradients) {
    std::printf("\n  Backward, given a fixed upstream gradient dY %s:\n", shape_text(cfg).c_str());
    for (const SchemeChecks& s : m.schemes)
      for (const Verification& g : s.gradients) print_verification_row(s.scheme, g);
  }
  if (m.any_blocks) {
    std::printf(
        "\n  Block by block, each part from the very input the scheme gave it: the norms from X\n"
        "  and h (float's roundings carried to first order, doubled), attention from Norm1(X)\n"
        "  and dh, the MLP from Norm2(h) and dY, each against its own float64 reference and\n"
        "  bound, as --block attention and --block mlp verify them (the MLP's rigorous;\n"
        "  attention's capped at 2^%d of max|reference|). Nothing compounds through the\n"
        "  norms, so a mistake as small as one block alone shows is caught%s:\n",
        std::ilogb(AttentionReference::mistake(cfg.dtype)),
        cfg.dtype == DType::bf16
            ? " (the blocks'\n  inputs rounded to bf16 first, as the blocks round them)"
            : "");
    for (const SchemeChecks& s : m.schemes)
      for (const Verification& b : s.blocks) print_verification_row(s.scheme, b);
  }
  if (m.any_invariant) {
    const InvariantBlocking blocking = InvariantBlocking::of(cfg);
    std::printf(
        "\n  Digests: a 64-bit fingerprint of each whole tensor's bits, the same at every\n"
        "  --tp-size for the *-inv schemes; every copy: every rank's, or a TP group's shards.\n");
    if (cfg.block != BlockKind::mlp)
      std::printf(
          "  The invariant schemes run every head with products of its own and sum Y, dX and\n"
          "  each KV head's dK and dV over heads exactly%s\n",
          cfg.block == BlockKind::layer ? "; in the MLP:" : ":");
    if (cfg.block != BlockKind::attention)
      std::printf(
          "  The invariant schemes cut F into %ld blocks of %ld columns and the tokens into\n"
          "  tiles of %ld rows (%ld tokens, padded to %ld):\n",
          blocking.blocks, blocking.block_width, blocking.row_tile, cfg.tokens(),
          blocking.padded_tokens);
    for (const SchemeChecks& s : m.schemes) {
      if (!is_invariant(s.scheme)) continue;
      for (const TensorDigest& d : s.digests)
        std::printf("  %-20s %-5s %016llx  every copy %s\n", scheme_name(s.scheme),
                    d.tensor.c_str(), static_cast<unsigned long long>(d.value),
                    d.copies_match ? "alike" : "DIFFERS");
    }
  }
  std::printf("\nMax difference from reference: %.2e\n", lead.max_abs_diff);
  std::printf("Correct: %s\n", yes_no(m.passed));
  std::fflush(stdout);
}

void TextReport::communication(const Config& cfg, const CommunicationMetrics& m) const {
  if (!prints_) return;
  section("COMMUNICATION ANALYSIS");
  std::printf(
      "\nConfiguration:\n  Hidden size: %d\n  Batch size: %d\n  Sequence length: %d\n"
      "  TP degree: %d\n",
      cfg.hidden_size, cfg.batch_size, cfg.seq_len, cfg.tp_size);
  std::printf("\nPer forward pass (%s, counted by the communication layer):\n",
              scheme_name(m.lead));
  std::printf("  All-reduce calls: %ld\n", m.lead_allreduce_calls);
  std::printf("  Elements per all-reduce: %s\n", grouped(m.elements_per_call).c_str());
  std::printf("  Bytes per all-reduce: %s\n", bytes_text(double(m.bytes_per_call)).c_str());
  std::printf("\nCommunication volume (ring algorithm, 2 x bytes x (T-1)/T):\n");
  std::printf("  Per rank: %s\n  Total across all ranks: %s\n", bytes_text(m.ring_per_rank).c_str(),
              bytes_text(m.ring_total).c_str());

  std::printf(
      "\nEvery scheme, one pass each, as counted (bytes: the whole tensors reduced or\n"
      "assembled; ring bytes: what each rank sends, all-reduce 2B(T-1)/T, all-gather and\n"
      "reduce-scatter B(T-1)/T):\n\n");
  std::printf("  %-20s %-9s %-32s %11s %13s  %s\n", "scheme", "pass", "collectives", "bytes",
              "ring B/rank", "= formula");
  for (const PassTraffic& p : m.passes)
    std::printf("  %-20s %-9s %-32s %11s %13s  %s\n", scheme_name(p.scheme),
                direction_name(p.direction), collectives_text(p.counted).c_str(),
                bytes_text(double(p.counted.bytes())).c_str(), bytes_text(p.counted_ring).c_str(),
                p.matches_formula ? "yes" : "NO");
  if (m.naive_over_megatron_bytes && cfg.activation == Activation::gelu)
    std::printf(
        "\nNaive moves %.1fx Megatron's bytes: it must sum the [tokens, F] pre-activation\n"
        "before GeLU, because GeLU of a partial sum is not the sum of GeLUs.\n",
        *m.naive_over_megatron_bytes);
  if (m.naive_over_megatron_bytes && cfg.activation == Activation::swiglu)
    std::printf(
        "\nNaive moves %.1fx Megatron's bytes: it must sum both [tokens, F] pre-activations,\n"
        "the gate's and the up projection's, before SiLU(gate) * up, which is not linear in\n"
        "either. Megatron's fused [gate_r | up_r] shards keep the whole product on each rank.\n",
        *m.naive_over_megatron_bytes);
  if (m.sequence_parallel)
    std::printf(
        "\nSequence parallelism replaces each all-reduce by an all-gather and a\n"
        "reduce-scatter: %s vs %s sent per rank per forward, while X and Y (and dY, dX)\n"
        "shrink from %s to %s per rank.\n",
        bytes_text(m.sequence_parallel->sp_ring).c_str(),
        bytes_text(m.sequence_parallel->megatron_ring).c_str(),
        bytes_text(m.sequence_parallel->megatron_boundary).c_str(),
        bytes_text(m.sequence_parallel->sp_boundary).c_str());
  if (m.any_invariant)
    std::printf(
        "\nThe *-inv schemes add their partial sums exactly, as 64-bit integers: twice fp32's\n"
        "bytes, and a float per token (a MAX all-reduce) to agree on each row's grid first.\n");
  if (m.attention) print_attention_traffic(*m.attention);
  if (cfg.block == BlockKind::attention)
    std::printf(
        "\nThe price of tensor parallelism is this communication; serial needs none,\n"
        "but holds all of Wq, Wk, Wv and Wo on one rank.\n");
  else if (cfg.block == BlockKind::layer)
    std::printf(
        "\nThe price of tensor parallelism is this communication; serial needs none,\n"
        "but holds all of the layer's weights on one rank.\n");
  else
    std::printf(
        "\nThe price of tensor parallelism is this communication; serial needs none,\n"
        "but holds all 8H^2 weights on one rank.\n");
  std::fflush(stdout);
}

void TextReport::benchmark(const Config& cfg, const BenchmarkMetrics& m) const {
  if (!prints_) return;
  section("BENCHMARK");
  std::printf(
      "\n%d warm-up + %d timed passes per scheme; each is timed on every rank and\n"
      "counts as the slowest rank's time. Serial runs alone on rank 0.\n",
      cfg.warmup, cfg.iterations);
  if (m.oversubscribed)
    std::printf(
        "\nNote: %d ranks share %d core%s on this node, so they take turns on them: the times,\n"
        "speed-ups and efficiencies below measure that time-sharing as much as tensor\n"
        "parallelism. Launch at most one rank per core to measure tensor parallelism.\n",
        m.ranks_on_node, m.cores_on_node, m.cores_on_node == 1 ? "" : "s");
  std::printf("\n  %-20s %10s %10s %10s %10s   (forward, ms)\n", "scheme", "mean", "median", "min",
              "max");
  for (const SchemeSpeed& s : m.schemes)
    std::printf("  %-20s %10.3f %10.3f %10.3f %10.3f\n", scheme_name(s.scheme), s.timing.total.mean,
                s.timing.total.median, s.timing.total.min, s.timing.total.max);
  // With uneven shards, how much longer the slowest rank computes than the mean rank.
  const char* imbalance = m.uneven_shards ? "  slowest/mean" : "";
  std::printf("\n  %-20s %10s %10s %10s %10s%s   (median ms; floor = the bare\n", "scheme",
              "compute", "comm", "floor", "comm/floor", imbalance);
  std::printf("  %-20s %10s %10s %10s %10s%*s    collectives of the same sizes)\n", "", "", "", "",
              "", int(std::strlen(imbalance)), "");
  for (const SchemeSpeed& s : m.schemes) {
    char ratio[16] = "-";
    if (s.comm_over_floor) std::snprintf(ratio, sizeof ratio, "%.2f", *s.comm_over_floor);
    std::printf("  %-20s %10.3f %10.3f %10.3f %10s", scheme_name(s.scheme), s.timing.compute.median,
                s.timing.comm.median, s.floor.median, ratio);
    if (m.uneven_shards) std::printf(" %13.3fx", s.compute_imbalance);
    std::printf("\n");
  }
  std::printf("\n  %-20s %8s %7s %10s %8s %9s %9s\n", "scheme", "GFLOP/s", "% peak", "bound ms",
              "/bound", "speed-up", "effic.");
  for (const SchemeSpeed& s : m.schemes) {
    std::printf("  %-20s %8.1f %6.0f%% %10.3f %7.2fx", scheme_name(s.scheme),
                s.forward.gflops_per_rank, s.forward.percent_of_peak, s.forward.bound_ms,
                s.forward.over_bound);
    if (s.speedup)
      std::printf(" %8.2fx %8.0f%%\n", *s.speedup, 100 * *s.efficiency);
    else
      std::printf(" %9s %9s\n", "-", "-");
  }
  std::printf(
      "  (GFLOP/s per rank; bound = this rank's FLOPs at the FMA peak + the floor;\n"
      "   speed-up = serial time / scheme time, efficiency = speed-up / ranks%s)\n",
      m.has_serial ? "" : "; both need serial: --scheme all");
  if (m.overlap) print_overlap(m);
  if (m.overlap && cfg.block == BlockKind::layer)
    std::printf(
        "  (the layer: its MLP's all-reduces are the ones overlapped; attention's stays whole\n"
        "   and blocking, after its output projection)\n");
  if (m.any_backward) {
    std::printf("\n  %-20s %10s %10s %10s %10s %8s %7s   (forward + backward,\n", "scheme",
                "median", "compute", "comm", "floor", "GFLOP/s", "% peak");
    std::printf("  %-20s %10s %10s %10s %10s %8s %7s    median ms)\n", "", "", "", "", "", "", "");
    for (const SchemeSpeed& s : m.schemes) {
      if (!s.has_backward) continue;
      std::printf("  %-20s %10.3f %10.3f %10.3f %10.3f %8.1f %6.0f%%\n", scheme_name(s.scheme),
                  s.train_timing.total.median, s.train_timing.compute.median,
                  s.train_timing.comm.median, s.train_floor.median, s.train.gflops_per_rank,
                  s.train.percent_of_peak);
    }
  }
  std::printf("\nTP %s forward pass (%s, median): %.3f ms\n",
              cfg.block == BlockKind::mlp ? "MLP" : block_name(cfg.block), scheme_name(m.lead),
              m.lead_forward.median);
  std::printf("Output shape: %s\n", shape_text(cfg).c_str());
  std::fflush(stdout);
}

void TextReport::scaling(const ScalingMetrics& m) const {
  if (!prints_) return;
  section("SCALING ANALYSIS");
  std::printf("\nMemory scaling with Tensor Parallelism (%s):\n\n", dtype_name(m.dtype));
  if (!m.layer.empty()) {
    print_layer_scaling(m);
  } else if (m.attention) {
    std::printf(
        "For attention with hidden_size H, N query heads and K key/value heads of d = H/N:\n"
        "  Non-parallel: Wq H x Nd + Wk, Wv H x Kd + Wo Nd x H = 2H(N + K)d parameters\n"
        "  With TP degree T: each rank its query heads' Wq columns and Wo rows, and the Wk, Wv\n"
        "  columns of the KV heads they use: %ld KV heads held in all for K = %ld (the\n"
        "  replicas cost 2Hd each)\n",
        m.attention->kv_heads_held, m.attention->kv_heads);
    std::printf("\nThis run: H=%ld, N=%ld, K=%ld, T=%d\n", m.run.hidden_size,
                m.attention->query_heads, m.attention->kv_heads, m.run.tp_size);
    std::printf("  Non-parallel: %s parameters (%s)\n", grouped(long(m.run.params.total)).c_str(),
                bytes_text(m.run.bytes_total).c_str());
    std::printf("  With %d-way TP: %s parameters on the rank with the most (%s)\n", m.run.tp_size,
                grouped(long(m.run.params.per_rank)).c_str(),
                bytes_text(m.run.bytes_per_rank).c_str());
    print_share("N", "query heads", *m.shares.query_heads, "Wq's columns and Wo's rows");
  } else if (m.activation == Activation::swiglu) {
    std::printf(
        "For a gated MLP (SwiGLU) with hidden_size H and FFN width F:\n"
        "  Non-parallel: W1 (gate) H x F + W3 (up) H x F + W2 F x H = 3HF parameters\n"
        "  With TP degree T: 3HF/T parameters per rank (the widest: 3H x ceil(F/T))\n"
        "  (GeLU's MLP has 2HF = 8H^2 at F = 4H: F = 2/3 x 4H keeps 3HF near it.)\n"
        "  F for H = %ld: LLaMA's 256 x ceil(2/3 x 4H / 256) = %ld, Megatron-LM's\n"
        "  64 x floor(2/3 x 4H / 64) = %ld; this run's F = %ld\n",
        m.run.hidden_size, m.llama_ffn_hidden_size, m.megatron_ffn_hidden_size,
        m.run.ffn_hidden_size);
  } else if (m.run.ffn_hidden_size == 4 * m.run.hidden_size) {
    std::printf(
        "For an MLP with hidden_size H and intermediate_size 4H:\n"
        "  Non-parallel: W1 H x 4H + W2 4H x H = 8H^2 parameters\n"
        "  With TP degree T: 8H^2/T parameters per rank\n");
  } else {
    std::printf(
        "For an MLP with hidden_size H and intermediate_size F = %ld:\n"
        "  Non-parallel: W1 H x F + W2 F x H = 2HF parameters\n"
        "  With TP degree T: 2HF/T parameters per rank (the widest: 2H x ceil(F/T))\n",
        m.run.ffn_hidden_size);
  }
  if (!m.attention && m.layer.empty()) {
    print_params("This run", m.run);
    print_share("F", "columns", m.shares.ffn_columns, "W1's columns and W2's rows");
  }
  if (m.shares.hidden_rows)
    print_share("H", "rows", *m.shares.hidden_rows, "the naive scheme's rows of W1");
  if (m.shares.tokens) print_share("tokens", "tokens", *m.shares.tokens, "megatron-sp's X and Y");
  std::printf("\n  %-20s %16s %26s\n", "scheme", "weights/rank", "X, Y (dY, dX) per rank");
  for (const SchemeMemory& s : m.schemes)
    std::printf("  %-20s %16s %26s\n", scheme_name(s.scheme),
                bytes_text(double(s.weight_bytes)).c_str(), bytes_text(s.boundary_bytes).c_str());
  std::printf("  (as allocated; serial's on rank 0 only)\n");
  if (!m.attention) print_params("Example", m.example);
  std::printf(
      "\nRank 0's resident memory: peak %s = baseline %s (MPI, libraries)\n"
      "  + %s, against an estimate of %s for its tensors (%.2fx)\n",
      bytes_text(m.memory.peak_rss).c_str(), bytes_text(m.memory.baseline_rss).c_str(),
      bytes_text(m.rss_growth).c_str(), bytes_text(m.memory.estimate).c_str(), m.rss_over_estimate);
  std::fflush(stdout);
}

}  // namespace tp_mlp
