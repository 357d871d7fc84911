// gemm: oneDNN on one OpenMP thread, since the MPI ranks are the parallelism: dnnl_sgemm for
// fp32, and oneDNN's matmul primitive, planned once per call site with constant weights
// reordered once into the layout it prefers, for bf16 (measured: 1.9-2.0x dnnl_sgemm on
// AVX512_BF16) and for fp32 products of few rows (PackedSgemm). Where the CPU has no native
// bf16 (oneDNN 2.6 then has no bf16 matmul at all, or only a slow reference one), the bf16
// product is widened to fp32 instead.
#include "tp_mlp/gemm.hpp"

#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include <dnnl.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.hpp>

#include "tp_mlp/machine.hpp"

namespace tp_mlp {

void gemm(const ConstMatrixRef& a, const ConstMatrixRef& b, MatrixRef c, Op op_a, Op op_b) {
  const bool ta = op_a == Op::transpose, tb = op_b == Op::transpose;
  const long k = ta ? a.rows() : a.cols();
  eigen_assert((ta ? a.cols() : a.rows()) == c.rows() && (tb ? b.rows() : b.cols()) == c.cols() &&
               (tb ? b.cols() : b.rows()) == k);
  // The row-major API reads transposes in place; leading dimensions are the row strides.
  const dnnl_status_t status =
      dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', c.rows(), c.cols(), k, 1.0f, a.data(),
                 a.outerStride(), b.data(), b.outerStride(), 0.0f, c.data(), c.outerStride());
  if (status != dnnl_success)
    throw std::runtime_error("dnnl_sgemm failed with status " + std::to_string(int(status)));
}

namespace {

using dnnl::memory;
using Tag = memory::format_tag;

dnnl::engine& cpu() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// op(x) as a [rows, cols] bf16/f32 matrix read in place from row-major storage.
memory::desc view(long rows, long cols, long stride, Op op, memory::data_type type) {
  const memory::dims strides =
      op == Op::transpose ? memory::dims{1, stride} : memory::dims{stride, 1};
  return memory::desc({rows, cols}, type, strides);
}

// The primitive only where it is the fast one: brgemm with native bf16 instructions.
bool native(const dnnl::matmul::primitive_desc& pd) {
  const std::string impl = pd.impl_info_str();
  return impl.rfind("brg", 0) == 0 && impl.find("bf16") != std::string::npos;
}

// One matmul, planned for the shapes and strides of its operands; a `weights` operand is
// kept in `prepared`, in the primitive's layout, refreshed by prepare_weights().
struct Primitive {
  struct Layout {  // of a and c as planned: execute() refuses others rather than misread them
    long a_rows, a_stride, c_rows, c_stride;
  };
  Layout layout;
  dnnl::matmul::primitive_desc pd;
  dnnl::matmul matmul;
  dnnl::stream stream;
  memory a, b, c;
  std::optional<memory> prepared;
  std::string name;
};

// Memory the library allocates, whose failure is an out-of-memory like any other (one rank
// out of memory aborts the job, naming itself), not a library error.
memory allocate(const memory::desc& desc) {
  try {
    return memory(desc, cpu());
  } catch (const dnnl::error& e) {
    if (e.status == dnnl_out_of_memory) throw std::bad_alloc();
    throw;
  }
}

Primitive plan_primitive(Primitive::Layout layout, const memory::desc& a,
                         const memory::desc& b_user, const memory::desc& c, bool weights) {
  const memory::desc b =
      weights ? memory::desc(b_user.dims(), b_user.data_type(), Tag::any) : b_user;
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, c), cpu());
  Primitive p{layout,
              pd,
              dnnl::matmul(pd),
              dnnl::stream(cpu()),
              memory(a, cpu(), DNNL_MEMORY_NONE),
              memory(b_user, cpu(), DNNL_MEMORY_NONE),
              memory(c, cpu(), DNNL_MEMORY_NONE),
              std::nullopt,
              std::string("oneDNN matmul (") + pd.impl_info_str() + ")"};
  if (weights) p.prepared = allocate(pd.weights_desc());
  return p;
}

void prepare_weights(Primitive& p, const void* b) {
  if (!p.prepared) return;  // it reads the weights as they are, at every run
  p.b.set_data_handle(const_cast<void*>(b));
  dnnl::reorder(p.b, *p.prepared).execute(p.stream, p.b, *p.prepared);
  p.stream.wait();
}

template <typename A>
void execute(Primitive& p, const A& a, const void* b, MatrixRef c) {
  const Primitive::Layout& l = p.layout;
  if (a.rows() != l.a_rows || a.outerStride() != l.a_stride || c.rows() != l.c_rows ||
      c.outerStride() != l.c_stride)
    throw std::logic_error("a planned matmul run on matrices laid out unlike its plan's");
  p.a.set_data_handle(const_cast<void*>(static_cast<const void*>(a.data())));
  p.c.set_data_handle(c.data());
  memory weights = p.prepared ? *p.prepared : p.b;
  if (!p.prepared) weights.set_data_handle(const_cast<void*>(b));
  p.matmul.execute(p.stream,
                   {{DNNL_ARG_SRC, p.a}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, p.c}});
  p.stream.wait();
}

double primitive_bytes(const Primitive& p) {
  return double(p.pd.scratchpad_desc().get_size()) +
         (p.prepared ? double(p.prepared->get_desc().get_size()) : 0.0);
}

// What a plan holds beyond its operands, before it exists: a prepared copy of the weights, its
// blocks padded by at most a few percent (measured 3 %), and the primitive's scratchpad
// (measured at most 345 KiB).
double primitive_bytes_for(long n, long k, std::size_t element_bytes, bool weights) {
  constexpr double kPadding = 1.05, kScratchpad = 512 * 1024;
  return kScratchpad + (weights ? kPadding * double(k * n) * double(element_bytes) : 0.0);
}

}  // namespace

struct Bf16Gemm::Plan {
  std::optional<Primitive> primitive;
  std::optional<WidenedBf16Gemm> widened;
};

Bf16Gemm::Bf16Gemm(const ConstMatrixBRef& a, const ConstMatrixBRef& b, const MatrixRef& c, Op op_a,
                   Op op_b, B b_kind)
    : plan_(std::make_unique<Plan>()) {
  const long m = c.rows(), n = c.cols(), k = op_a == Op::transpose ? a.rows() : a.cols();
  if (cpu_has_native_bf16()) {
    try {
      const auto half = memory::data_type::bf16;
      Primitive p = plan_primitive(
          {a.rows(), a.outerStride(), m, c.outerStride()}, view(m, k, a.outerStride(), op_a, half),
          view(k, n, b.outerStride(), op_b, half),
          view(m, n, c.outerStride(), Op::none, memory::data_type::f32), b_kind == B::weights);
      if (native(p.pd)) {
        plan_->primitive = std::move(p);
        prepare(b);
        return;
      }
    } catch (const dnnl::error&) {
      // no bf16 matmul for this CPU or shape: widen instead
    }
  }
  plan_->widened.emplace(a, b, op_a, op_b, b_kind);
}

Bf16Gemm::~Bf16Gemm() = default;
Bf16Gemm::Bf16Gemm(Bf16Gemm&& other) noexcept = default;
Bf16Gemm& Bf16Gemm::operator=(Bf16Gemm&& other) noexcept = default;

void Bf16Gemm::prepare(const ConstMatrixBRef& b) {
  if (plan_->widened)
    plan_->widened->prepare(b);
  else
    prepare_weights(*plan_->primitive, b.data());
}

void Bf16Gemm::run(const ConstMatrixBRef& a, const ConstMatrixBRef& b, MatrixRef c) {
  if (plan_->widened)
    plan_->widened->run(a, b, c);
  else
    execute(*plan_->primitive, a, b.data(), c);
}

// Plans count themselves too: they are allocated beside the scheme.
double Bf16Gemm::bytes() const {
  if (plan_->widened) return sizeof(Plan) + plan_->widened->bytes();
  return sizeof(Plan) + primitive_bytes(*plan_->primitive);
}

double Bf16Gemm::bytes_for(long m, long n, long k, B b_kind) {
  if (!cpu_has_native_bf16()) return sizeof(Plan) + WidenedBf16Gemm::bytes_for(m, k, k, n);
  return sizeof(Plan) + primitive_bytes_for(n, k, sizeof(bfloat16), b_kind == B::weights);
}

const char* Bf16Gemm::implementation() const {
  return plan_->widened ? "widened to fp32, dnnl_sgemm" : plan_->primitive->name.c_str();
}

// Measured, [m, 1024]·[1024, 2048] on one Zen 5 core: the primitive with reordered weights ran
// 205, 203 and 204 GFLOP/s at m = 64, 128 and 256 against dnnl_sgemm's 185, 182 and 198, and
// 198 against 204 at m = 1024.
bool PackedSgemm::pays(long m) { return m <= kPacksUpToRows; }

struct PackedSgemm::Plan {
  Primitive primitive;
};

PackedSgemm::PackedSgemm(const ConstMatrixRef& a, const ConstMatrixRef& b, const MatrixRef& c,
                         Op op_a, Op op_b) {
  const long m = c.rows(), n = c.cols(), k = op_a == Op::transpose ? a.rows() : a.cols();
  const auto single = memory::data_type::f32;
  plan_ = std::make_unique<Plan>(Plan{plan_primitive(
      {a.rows(), a.outerStride(), m, c.outerStride()}, view(m, k, a.outerStride(), op_a, single),
      view(k, n, b.outerStride(), op_b, single), view(m, n, c.outerStride(), Op::none, single),
      /*weights=*/true)});
  prepare(b);
}

PackedSgemm::~PackedSgemm() = default;
PackedSgemm::PackedSgemm(PackedSgemm&& other) noexcept = default;
PackedSgemm& PackedSgemm::operator=(PackedSgemm&& other) noexcept = default;

void PackedSgemm::prepare(const ConstMatrixRef& b) { prepare_weights(plan_->primitive, b.data()); }

void PackedSgemm::run(const ConstMatrixRef& a, MatrixRef c) {
  execute(plan_->primitive, a, nullptr, c);
}

double PackedSgemm::bytes() const { return sizeof(Plan) + primitive_bytes(plan_->primitive); }

double PackedSgemm::bytes_for(long, long n, long k) {
  return sizeof(Plan) + primitive_bytes_for(n, k, sizeof(float), /*weights=*/true);
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

}  // namespace tp_mlp
