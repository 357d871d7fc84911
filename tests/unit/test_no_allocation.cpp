// Proof of the two promises the memory check rests on, for every scheme, element type and flag
// combination, for the attention block's parts, and for the whole attention block and layer, on
// whichever GEMM backend this build has:
//  - the plan is what is allocated: building a scheme in a workspace made from its plan
//    allocates that workspace, exactly its planned size, and nothing else of ours;
//  - a pass allocates nothing of ours: a forward and backward pass, after one warm-up pass.
// malloc and friends are counted (operator new goes through malloc). An allocation made inside a
// library call (oneDNN building or running a primitive, dnnl_sgemm's packing buffers, MPI moving
// data: library_scope.hpp) is the library's own and counted apart; everything else is ours.
#include <cerrno>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "attention_model.hpp"
#include "one_rank_model.hpp"
#include "tp_mlp/causal_attention.hpp"
#include "tp_mlp/gemm.hpp"
#include "tp_mlp/library_scope.hpp"
#include "tp_mlp/norm.hpp"
#include "tp_mlp/rope.hpp"

// glibc's own allocator, under its own (reserved) names, which the counters below call.
extern "C" {
void* __libc_malloc(std::size_t);                 // NOLINT(bugprone-reserved-identifier)
void* __libc_calloc(std::size_t, std::size_t);    // NOLINT(bugprone-reserved-identifier)
void* __libc_realloc(void*, std::size_t);         // NOLINT(bugprone-reserved-identifier)
void* __libc_memalign(std::size_t, std::size_t);  // NOLINT(bugprone-reserved-identifier)
}

namespace {
bool counting = false;
long ours = 0, ours_bytes = 0, libraries = 0;
void note(std::size_t bytes) {
  if (!counting) return;
  if (tp_mlp::LibraryScope::open()) {
    ++libraries;
    return;
  }
  ++ours;
  ours_bytes += long(bytes);
}
void start_counting() {
  ours = ours_bytes = libraries = 0;
  counting = true;
}
}  // namespace

extern "C" {
void* malloc(std::size_t n) { return note(n), __libc_malloc(n); }
void* calloc(std::size_t n, std::size_t size) { return note(n * size), __libc_calloc(n, size); }
void* realloc(void* p, std::size_t n) { return note(n), __libc_realloc(p, n); }
void* aligned_alloc(std::size_t alignment, std::size_t n) {
  return note(n), __libc_memalign(alignment, n);
}
void* memalign(std::size_t alignment, std::size_t n) {
  return note(n), __libc_memalign(alignment, n);
}
int posix_memalign(void** p, std::size_t alignment, std::size_t n) {
  note(n);
  *p = __libc_memalign(alignment, n);
  return *p ? 0 : ENOMEM;
}
}

using namespace tp_mlp;

// Every scheme, in fp32 and in bf16 with either reduce dtype (an fp32 model is never reduced
// in bf16: validate.cpp refuses it).
struct Types {
  DType dtype, reduce;
};
using Variant = std::tuple<Scheme, Types>;
const auto kVariants = ::testing::Combine(
    ::testing::Values(Scheme::megatron, Scheme::megatron_sp, Scheme::megatron_overlap,
                      Scheme::megatron_inv, Scheme::megatron_sp_inv, Scheme::megatron_overlap_inv,
                      Scheme::naive, Scheme::serial, Scheme::serial_inv),
    ::testing::Values(Types{DType::fp32, DType::fp32}, Types{DType::bf16, DType::bf16},
                      Types{DType::bf16, DType::fp32}));

std::string variant_name(const ::testing::TestParamInfo<Variant>& param) {
  const auto [scheme, types] = param.param;
  return scheme_test_name({scheme, param.index}) + "_" + dtype_name(types.dtype) + "_reduce_" +
         dtype_name(types.reduce);
}

class NoAllocation : public ::testing::TestWithParam<Variant> {};

TEST_P(NoAllocation, ForwardAndBackwardAllocateNothingOfTheirOwn) {
  const auto [scheme, types] = GetParam();
  OneRankModel m(scheme, 32, 4, 16, Activation::gelu, types.dtype, types.reduce);
  auto pass = [&] {
    m.mlp->forward(m.x);
    if (m.mlp->has_backward()) m.mlp->backward(m.dy);
  };
  pass();  // libraries may set up what they keep on first use
  start_counting();
  pass();
  counting = false;
  EXPECT_EQ(ours, 0) << scheme_name(scheme) << ": " << ours_bytes << " bytes, while the "
                     << gemm_backend() << " and MPI calls made " << libraries << " allocations";
}

class WorkspaceAccount : public ::testing::TestWithParam<Variant> {};

// Row counts on both sides of where a plan starts packing its weights (oneDNN's PackedSgemm
// path, up to 256 rows), and an H of one, whose products have a single column or row.
TEST_P(WorkspaceAccount, ThePlanIsExactlyWhatIsAllocated) {
  const auto [scheme, types] = GetParam();
  World world;
  for (const int hidden_size : {1, 48})
    for (const int seq_len : {8, 160})
      for (const bool backward : {false, true})
        for (const bool bias : {false, true}) {
          Config cfg = OneRankModel::options(hidden_size, 2, seq_len, Activation::swiglu,
                                             types.dtype, types.reduce);
          cfg.backward = backward;
          cfg.bias = bias;
          TpComm tp = scheme == Scheme::serial ? TpComm::group_of_one(world) : TpComm(world, 1);
          const WorkspacePlan plan = scheme_plan(scheme, cfg, tp, OneRankModel::kOverlapChunks);
          start_counting();
          {
            Workspace ws(plan);
            make_scheme(ws, scheme, cfg, tp, OneRankModel::kOverlapChunks);
            counting = false;
            EXPECT_EQ(ws.plan().bytes, plan.bytes) << "the real build took what the plan said";
          }
          const std::string what = std::string(scheme_name(scheme)) + " " +
                                   dtype_name(types.dtype) + " -H " + std::to_string(hidden_size) +
                                   " -s " + std::to_string(seq_len) +
                                   (backward ? " --backward" : "") + (bias ? " --bias" : "");
          EXPECT_EQ(ours, 1) << what << ": one allocation, the workspace";
          EXPECT_EQ(ours_bytes, long(std::max<std::size_t>(plan.total(), Workspace::kAlignment)))
              << what;
        }
}

INSTANTIATE_TEST_SUITE_P(EveryScheme, WorkspaceAccount, kVariants, variant_name);
INSTANTIATE_TEST_SUITE_P(EveryScheme, NoAllocation, kVariants, variant_name);

namespace {

// The attention block's parts, for two sequences that span two of attention's tiles, grouped
// query heads shared unevenly, and both norms, with their backward passes.
struct AttentionBlockParts {
  static constexpr long kBatch = 2, kSeqLen = CausalAttention::kTileRows + 6, kHeadDim = 8;
  static constexpr long kTokens = kBatch * kSeqLen;
  const HeadLayout heads{kHeadDim, 2, {1, 0, 1, 1}};
  const long width = heads.query_heads() * kHeadDim;  // H
  Rope* rope = nullptr;
  CausalAttention* attention = nullptr;
  Norm* rms = nullptr;
  Norm* layer = nullptr;

  void build(Workspace& ws) {
    constexpr double kTheta = 10000;
    constexpr float kEps = 1e-5f;
    rope = &ws.make<Rope>(ws, kSeqLen, kHeadDim, kTheta);
    attention = &ws.make<CausalAttention>(ws, kBatch, kSeqLen, heads, true);
    rms = &ws.make<Norm>(ws, NormKind::rms, kTokens, width, kEps, true);
    layer = &ws.make<Norm>(ws, NormKind::layer, kTokens, width, kEps, true);
  }
};

}  // namespace

TEST(AttentionBlockParts, ThePlanIsExactlyWhatIsAllocated) {
  AttentionBlockParts parts;
  Workspace planning;
  parts.build(planning);
  const WorkspacePlan plan = planning.plan();
  start_counting();
  {
    Workspace ws(plan);
    parts.build(ws);
    counting = false;
    EXPECT_EQ(ws.plan().bytes, plan.bytes) << "the real build took what the plan said";
  }
  EXPECT_EQ(ours, 1) << "one allocation, the workspace";
  EXPECT_EQ(ours_bytes, long(std::max<std::size_t>(plan.total(), Workspace::kAlignment)));
}

TEST(AttentionBlockParts, ForwardAndBackwardAllocateNothingOfTheirOwn) {
  AttentionBlockParts parts;
  const auto ws = build_planned([&](Workspace& w) { parts.build(w); });
  const long tokens = AttentionBlockParts::kTokens;
  const long kv_width = parts.heads.kv_heads * AttentionBlockParts::kHeadDim;
  parts.rms->weight().setOnes();
  parts.layer->weight().setOnes();
  parts.layer->bias().setZero();
  const Matrix x = Matrix::Random(tokens, parts.width);
  Matrix q(tokens, parts.width), k = Matrix::Random(tokens, kv_width);
  const Matrix v = Matrix::Random(tokens, kv_width), d_out = Matrix::Random(tokens, parts.width);
  Matrix out(tokens, parts.width), dq(tokens, parts.width), dk(tokens, kv_width),
      dv(tokens, kv_width);
  auto pass = [&] {  // as a layer would run them, roughly: norm, RoPE, attention, and back
    parts.rms->forward(x);
    parts.layer->forward(x);
    q = parts.rms->output();
    parts.rope->forward(q);
    parts.rope->forward(k);
    parts.attention->forward(q, k, v, out);
    parts.attention->backward(q, k, v, d_out, dq, dk, dv);
    parts.rope->backward(dq);
    parts.rope->backward(dk);
    parts.rms->backward(x, dq);
    parts.layer->backward(x, dq);
  };
  pass();
  start_counting();
  pass();
  counting = false;
  EXPECT_EQ(ours, 0) << ours_bytes << " bytes, while the " << gemm_backend() << " calls made "
                     << libraries << " allocations";
}

// The attention block and the layer whole, as the program builds them: megatron, megatron-sp
// (whose norms' gradients are summed) and serial, GQA with biases, in fp32 and bf16, LayerNorm
// and RMSNorm; and the invariant twins (the layer's without sequence parallelism).
TEST(WholeBlocks, ThePlanIsExactAndAPassAllocatesNothing) {
  World world;
  auto in_bf16 = [](Config cfg) {
    cfg.dtype = DType::bf16;
    return cfg;
  };
  auto invariant = [](Config cfg) {
    cfg.invariant = true;
    return cfg;
  };
  const Config configs[] = {
      attention_config(1, 4, 2, 8, 8, 0),
      in_bf16(attention_config(1, 4, 2, 8, 8, 0)),
      invariant(attention_config(1, 4, 2, 8, 8, 0)),
      invariant(in_bf16(attention_config(1, 4, 2, 8, 8, 0))),
      layer_config(1, 4, 2, 8, 8, 0, Activation::gelu, NormKind::layer),
      layer_config(1, 4, 2, 8, 8, 0, Activation::swiglu, NormKind::rms),
      in_bf16(layer_config(1, 4, 2, 8, 8, 0, Activation::swiglu, NormKind::rms)),
      invariant(layer_config(1, 4, 2, 8, 8, 0, Activation::swiglu, NormKind::rms))};
  for (const Config& cfg : configs)
    for (const Scheme scheme :
         cfg.invariant
             ? std::vector{Scheme::megatron_inv, Scheme::megatron_sp_inv, Scheme::serial_inv}
             : std::vector{Scheme::megatron, Scheme::megatron_sp, Scheme::serial}) {
      if (scheme == Scheme::megatron_sp_inv && cfg.block == BlockKind::layer) continue;
      const std::string what = std::string(block_name(cfg.block)) + " " + dtype_name(cfg.dtype) +
                               " " + norm_name(cfg.norm_kind()) + " " + scheme_name(scheme);
      TpComm tp =
          plain_of(scheme) == Scheme::serial ? TpComm::group_of_one(world) : TpComm(world, 1);
      const WorkspacePlan plan = scheme_plan(scheme, cfg, tp, 1);
      start_counting();
      Workspace ws(plan);
      MlpScheme& block = make_scheme(ws, scheme, cfg, tp);
      counting = false;
      EXPECT_EQ(ours, 1) << what << ": one allocation, the workspace";
      EXPECT_EQ(ws.plan().bytes, plan.bytes) << what << ": the real build took what the plan said";
      const Matrix x =
          master_block(master_input(cfg), cfg.seed, {0, cfg.tokens()}, {0, cfg.hidden_size});
      auto pass = [&] {
        block.forward(x);
        block.backward(x);  // any dY will do
      };
      pass();
      start_counting();
      pass();
      counting = false;
      EXPECT_EQ(ours, 0) << what << ": " << ours_bytes << " bytes in a pass";
    }
}
