// gemm: oneDNN on one OpenMP thread, since the MPI ranks are the parallelism: dnnl_sgemm for
// fp32, and oneDNN's matmul primitive, planned once per call site with constant weights
// reordered once into the layout it prefers, for bf16 (measured: 1.9-2.0x dnnl_sgemm on
// AVX512_BF16) and for fp32 products of few rows where its kernel is the brgemm one
// (PackedSgemm's measurement below). The primitive's scratchpad and reordered weights live in
// the workspace, sized by the primitive itself. Where the CPU has no native bf16 (oneDNN 2.6 then
// has no bf16 matmul at all, or only a slow reference one), the bf16 product is widened to fp32.
#include <optional>
#include <stdexcept>
#include <string>

#include <dnnl.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.hpp>

#include "tp_mlp/gemm.hpp"
#include "tp_mlp/library_scope.hpp"
#include "tp_mlp/machine.hpp"
#include "tp_mlp/planned_gemm.hpp"
#include "tp_mlp/widened_gemm.hpp"

namespace tp_mlp {

void gemm(const ConstMatrixRef& a, const ConstMatrixRef& b, MatrixRef c, Op op_a, Op op_b) {
  const bool ta = op_a == Op::transpose, tb = op_b == Op::transpose;
  const long k = ta ? a.rows() : a.cols();
  eigen_assert((ta ? a.cols() : a.rows()) == c.rows() && (tb ? b.rows() : b.cols()) == c.cols() &&
               (tb ? b.cols() : b.rows()) == k);
  if (c.size() == 0) return;  // nothing to write (and oneDNN refuses a zero leading dimension)
  if (k == 0) {
    c.setZero();
    return;
  }
  // The row-major API reads transposes in place; leading dimensions are the row strides.
  const LibraryScope library;  // dnnl_sgemm allocates its packing buffers at every call
  const dnnl_status_t status =
      dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', c.rows(), c.cols(), k, 1.0f, a.data(),
                 a.outerStride(), b.data(), b.outerStride(), 0.0f, c.data(), c.outerStride());
  if (status != dnnl_success)
    throw std::runtime_error("dnnl_sgemm failed with status " + std::to_string(int(status)));
}

// Debian's oneDNN is built with OpenMP and would start a thread per core in every rank. The
// limit belongs to the calling thread, which is why it is set on the one that calls gemm().
void gemm_use_one_thread() { omp_set_num_threads(1); }

const char* gemm_backend() {
  static const std::string name = [] {
    const dnnl_version_t* v = dnnl_version();
    return "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
           std::to_string(v->patch) + " (dnnl_sgemm)";
  }();
  return name.c_str();
}

// dnnl_cpu_isa_t's values are sets of bits, each ISA's including those of the ones it extends.
VectorIsa gemm_vector_isa() {
  const unsigned isa = dnnl_get_effective_cpu_isa();
  auto has = [isa](unsigned bits) { return (isa & bits) == bits; };
  if (has(dnnl_cpu_isa_avx512_core) || has(dnnl_cpu_isa_avx512_mic)) return VectorIsa::avx512;
  if (has(dnnl_cpu_isa_avx2)) return VectorIsa::avx2;
  return VectorIsa::sse;
}

namespace {

using dnnl::memory;
using Tag = memory::format_tag;

dnnl::engine& cpu() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// op(x) as a [rows, cols] matrix of `type` read in place from row-major storage.
memory::desc view(long rows, long cols, long stride, Op op, memory::data_type type) {
  const memory::dims strides =
      op == Op::transpose ? memory::dims{1, stride} : memory::dims{stride, 1};
  return memory::desc({rows, cols}, type, strides);
}

// One call site's operands as planned: a and c must keep these strides at every run, and
// the shapes, which the primitive was made for.
struct Layout {
  long a_rows, a_stride, c_rows, c_stride;
  template <typename A>
  bool fits(const A& a, const MatrixRef& c) const {
    return a.rows() == a_rows && a.outerStride() == a_stride && c.rows() == c_rows &&
           c.outerStride() == c_stride;
  }
};

// The matmul a call site would use, with constant weights in the layout it prefers (tag any)
// and its scratchpad passed in by us: a description only, no kernel generated yet.
dnnl::matmul::primitive_desc describe(const memory::desc& a, const memory::desc& b_user,
                                      const memory::desc& c, bool weights) {
  const memory::desc b =
      weights ? memory::desc(b_user.dims(), b_user.data_type(), Tag::any) : b_user;
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return dnnl::matmul::primitive_desc(dnnl::matmul::desc(a, b, c), attr, cpu());
}

// A planned matmul: the primitive, and memory objects over the caller's operands, over the
// weights' prepared copy and over the scratchpad, both of which live in the workspace.
struct Primitive {
  Layout layout;
  std::string name;
  memory::desc b_user;  // the weights as the caller holds them
  dnnl::matmul matmul;
  dnnl::stream stream;
  memory a, b, c, scratchpad;
  std::optional<memory> prepared;  // the weights as the primitive prefers them

  Primitive(Workspace& ws, const Layout& l, const memory::desc& b_desc,
            const dnnl::matmul::primitive_desc& pd, bool weights)
      : layout(l), name(std::string("oneDNN matmul (") + pd.impl_info_str() + ")"), b_user(b_desc) {
    void* prepared_memory = weights ? ws.take(pd.weights_desc().get_size()) : nullptr;
    void* scratch = ws.scratch(pd.scratchpad_desc().get_size());
    if (ws.planning()) return;  // the sizes are all a plan needs
    matmul = dnnl::matmul(pd);
    stream = dnnl::stream(cpu());
    a = memory(pd.src_desc(), cpu(), DNNL_MEMORY_NONE);
    if (!weights) b = memory(pd.weights_desc(), cpu(), DNNL_MEMORY_NONE);
    c = memory(pd.dst_desc(), cpu(), DNNL_MEMORY_NONE);
    scratchpad = memory(pd.scratchpad_desc(), cpu(), scratch);
    if (weights) prepared = memory(pd.weights_desc(), cpu(), prepared_memory);
  }

  // The weights, laid out as b_user, reordered into the prepared copy.
  void prepare(const void* b_data) {
    if (!prepared) return;  // it reads b as it is, at every run
    const LibraryScope library;
    memory from(b_user, cpu(), const_cast<void*>(b_data));
    dnnl::reorder(from, *prepared).execute(stream, from, *prepared);
    stream.wait();
  }

  template <typename A>
  void execute(const A& a_in, const void* b_data, MatrixRef c_out) {
    if (!layout.fits(a_in, c_out))
      throw std::logic_error("a planned matmul run on matrices laid out unlike its plan's");
    const LibraryScope library;  // the library allocates its execution context
    a.set_data_handle(const_cast<void*>(static_cast<const void*>(a_in.data())));
    c.set_data_handle(c_out.data());
    if (!prepared) b.set_data_handle(const_cast<void*>(b_data));
    const memory& weights = prepared ? *prepared : b;
    dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, a.get()},
                              {DNNL_ARG_WEIGHTS, weights.get()},
                              {DNNL_ARG_DST, c.get()},
                              {DNNL_ARG_SCRATCHPAD, scratchpad.get()}};
    const dnnl_status_t status = dnnl_primitive_execute(matmul.get(), stream.get(), 4, args);
    if (status != dnnl_success)
      throw std::runtime_error(name + " failed with status " + std::to_string(int(status)));
    stream.wait();
  }
};

// The primitive's kernel for fp32: brgemm where the CPU has AVX-512, which beats dnnl_sgemm on
// few rows with the weights reordered once (measured, [m, 1024]·[1024, 2048] on one Zen 5 core:
// 205, 203 and 204 GFLOP/s at m = 64, 128 and 256 against 185, 182 and 198; 198 against 204 at
// m = 1024). Elsewhere (AVX2: oneDNN 2.6's "gemm:jit", which packs like dnnl_sgemm) it gains
// nothing: dnnl_sgemm stays.
constexpr long kPacksUpToRows = 256;
bool brgemm(const dnnl::matmul::primitive_desc& pd) {
  return std::string(pd.impl_info_str()).rfind("brg", 0) == 0;
}

// bf16 through the primitive only where it is the fast one: brgemm with native bf16.
bool native_bf16(const dnnl::matmul::primitive_desc& pd) {
  const std::string impl = pd.impl_info_str();
  return impl.rfind("brg", 0) == 0 && impl.find("bf16") != std::string::npos;
}

// A call site's product, from the matrices it is planned with: its shapes, and its operands
// as oneDNN descriptions.
template <typename T>
struct Site {
  long m, n, k;
  Layout layout;
  memory::desc a, b, c;
  Site(const ConstRef<T>& a_in, const ConstRef<T>& b_in, const MatrixRef& c_in, Op op_a, Op op_b,
       memory::data_type type)
      : m(c_in.rows()),
        n(c_in.cols()),
        k(op_a == Op::transpose ? a_in.rows() : a_in.cols()),
        layout{a_in.rows(), a_in.outerStride(), c_in.rows(), c_in.outerStride()},
        a(view(m, k, a_in.outerStride(), op_a, type)),
        b(view(k, n, b_in.outerStride(), op_b, type)),
        c(view(m, n, c_in.outerStride(), Op::none, memory::data_type::f32)) {}
};

// A product with nothing to compute, which oneDNN's primitives refuse: gemm() writes it.
template <typename A>
bool empty_product(const A& a, const MatrixRef& c, Op op_a) {
  return c.size() == 0 || (op_a == Op::transpose ? a.rows() : a.cols()) == 0;
}

}  // namespace

// ---- fp32: dnnl_sgemm, or the primitive with packed weights for few rows.

template <>
struct PlannedGemm<float>::Plan {
  Op op_a, op_b;
  std::optional<Primitive> packed;
};

template <>
PlannedGemm<float>::PlannedGemm(Workspace& ws, const ConstRef<float>& a, const ConstRef<float>& b,
                                const MatrixRef& c, Op op_a, Op op_b, Operand b_kind)
    : plan_(&ws.make<Plan>(Plan{op_a, op_b, std::nullopt})) {
  if (c.rows() > kPacksUpToRows || b_kind != Operand::weights || empty_product(a, c, op_a))
    return;                    // gemm() serves, empty products included
  const LibraryScope library;  // oneDNN's descriptions and primitive are its own memory
  const Site<float> s(a, b, c, op_a, op_b, memory::data_type::f32);
  const auto pd = describe(s.a, s.b, s.c, /*weights=*/true);
  if (brgemm(pd)) plan_->packed.emplace(ws, s.layout, s.b, pd, /*weights=*/true);
}

template <>
void PlannedGemm<float>::prepare(const ConstRef<float>& b) {
  if (plan_->packed) plan_->packed->prepare(b.data());
}

template <>
void PlannedGemm<float>::run(const ConstRef<float>& a, const ConstRef<float>& b, MatrixRef c) {
  if (plan_->packed)
    plan_->packed->execute(a, nullptr, c);
  else
    gemm(a, b, c, plan_->op_a, plan_->op_b);
}

template <>
const char* PlannedGemm<float>::implementation() const {
  return plan_->packed ? plan_->packed->name.c_str() : "dnnl_sgemm";
}

// ---- bf16: the primitive where the CPU has native bf16, else widened to fp32.

template <>
struct PlannedGemm<bfloat16>::Plan {
  std::optional<Primitive> native;
  std::optional<WidenedGemm> widened;
};

template <>
PlannedGemm<bfloat16>::PlannedGemm(Workspace& ws, const ConstRef<bfloat16>& a,
                                   const ConstRef<bfloat16>& b, const MatrixRef& c, Op op_a,
                                   Op op_b, Operand b_kind)
    : plan_(&ws.make<Plan>()) {
  const bool weights = b_kind == Operand::weights;
  if (cpu_has_native_bf16() && !empty_product(a, c, op_a)) {
    const LibraryScope library;  // oneDNN's descriptions and primitive are its own memory
    const Site<bfloat16> s(a, b, c, op_a, op_b, memory::data_type::bf16);
    try {
      const auto pd = describe(s.a, s.b, s.c, weights);
      if (native_bf16(pd)) {
        plan_->native.emplace(ws, s.layout, s.b, pd, weights);
        return;
      }
    } catch (const dnnl::error&) {
      // no bf16 matmul for this CPU or shape: widen instead
    }
  }
  plan_->widened.emplace(ws, a, b, op_a, op_b, b_kind);
}

template <>
void PlannedGemm<bfloat16>::prepare(const ConstRef<bfloat16>& b) {
  if (plan_->widened)
    plan_->widened->prepare(b);
  else
    plan_->native->prepare(b.data());
}

template <>
void PlannedGemm<bfloat16>::run(const ConstRef<bfloat16>& a, const ConstRef<bfloat16>& b,
                                MatrixRef c) {
  if (plan_->widened)
    plan_->widened->run(a, b, c);
  else
    plan_->native->execute(a, b.data(), c);
}

template <>
const char* PlannedGemm<bfloat16>::implementation() const {
  return plan_->widened ? "widened to fp32, dnnl_sgemm" : plan_->native->name.c_str();
}

const char* bf16_gemm_implementation() {
  static const std::string name = [] {
    constexpr long kProbe = 64;  // any shape the backend plans like the model's
    Workspace plan;
    const Tensor<bfloat16> a = plan.matrix<bfloat16>(kProbe, kProbe);
    const Tensor<bfloat16> b = plan.matrix<bfloat16>(kProbe, kProbe);
    const Tensor<float> c = plan.matrix<float>(kProbe, kProbe);
    return std::string(PlannedGemm<bfloat16>(plan, a, b, c, Op::none, Op::none, Operand::weights)
                           .implementation());
  }();
  return name.c_str();
}

bool packs_weights_once(DType dtype) {
  // The kernel the primitive picks for a few rows (as a chunk's blocks have) of each type.
  auto probe = [](memory::data_type type) {
    constexpr long kProbe = 64;
    const LibraryScope library;  // oneDNN's descriptions, and the names they give
    const memory::desc a = view(kProbe, kProbe, kProbe, Op::none, type);
    const memory::desc c = view(kProbe, kProbe, kProbe, Op::none, memory::data_type::f32);
    try {
      const auto pd = describe(a, a, c, /*weights=*/true);
      return type == memory::data_type::f32 ? brgemm(pd) : native_bf16(pd);
    } catch (const dnnl::error&) {
      return false;  // no such matmul on this CPU (bf16 without native bf16): widened instead
    }
  };
  static const bool fp32 = probe(memory::data_type::f32);
  static const bool bf16 = cpu_has_native_bf16() && probe(memory::data_type::bf16);
  return dtype == DType::bf16 ? bf16 : fp32;
}

}  // namespace tp_mlp
