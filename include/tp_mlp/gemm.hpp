// gemm: the matrix products the model needs, c = op(a)·op(b), behind an interface small enough
// that the backend (oneDNN or Eigen, chosen at configure time) can change without touching the
// schemes. fp32 products are one call, or planned where they pay; bf16 products are planned once
// per call site, because the fast way to run them (oneDNN's matmul primitive, with the weights
// in the layout it prefers) has to be prepared for the shapes and strides it will see.
#pragma once

#include <memory>
#include <optional>

#include "tp_mlp/bf16.hpp"
#include "tp_mlp/matrix.hpp"

namespace tp_mlp {

enum class Op { none, transpose };

// c = op(a) · op(b) for row-major operands, op(a) [m, k], op(b) [k, n], c [m, n]; c must
// not alias a or b. A transposed operand is read in place, never copied.
void gemm(const ConstMatrixRef& a, const ConstMatrixRef& b, MatrixRef c, Op op_a = Op::none,
          Op op_b = Op::none);

// c [m, n] (float) = op(a)·op(b) for bf16 a and b, the products accumulated in fp32 (a product
// of two bf16 numbers is exact in fp32). Planned for the shapes, strides and transposes of the
// matrices it is built with; run() takes those matrices, or others exactly like them. A
// `weights` operand b is constant between calls to prepare(): the backend may keep its own copy
// in the layout it prefers.
class Bf16Gemm {
 public:
  enum class B { varies, weights };
  Bf16Gemm(const ConstMatrixBRef& a, const ConstMatrixBRef& b, const MatrixRef& c, Op op_a, Op op_b,
           B b_kind);
  ~Bf16Gemm();
  Bf16Gemm(Bf16Gemm&& other) noexcept;
  Bf16Gemm& operator=(Bf16Gemm&& other) noexcept;

  // (Re)reads constant weights, after they have changed.
  void prepare(const ConstMatrixBRef& b);
  void run(const ConstMatrixBRef& a, const ConstMatrixBRef& b, MatrixRef c);
  // Bytes the plan holds beyond its operands, and what it would hold for these shapes.
  double bytes() const;
  static double bytes_for(long m, long n, long k, B b_kind);
  // "oneDNN matmul (brg:avx512_core_bf16)", or the portable way: "widened to fp32".
  const char* implementation() const;

  struct Plan;  // the backend's

 private:
  std::unique_ptr<Plan> plan_;
};

// c [m, n] = op(a)·op(b) for fp32 a and constant fp32 weights b, kept in the layout the
// backend's planned product prefers, reordered once by prepare(). dnnl_sgemm packs b again at
// every call, which a product of few rows (a chunk of tokens) cannot amortise: where pays(m)
// (oneDNN, up to kPacksUpToRows rows; never with Eigen), the packed product is the faster one.
class PackedSgemm {
 public:
  static constexpr long kPacksUpToRows = 256;
  static bool pays(long m);
  PackedSgemm(const ConstMatrixRef& a, const ConstMatrixRef& b, const MatrixRef& c, Op op_a,
              Op op_b);
  ~PackedSgemm();
  PackedSgemm(PackedSgemm&& other) noexcept;
  PackedSgemm& operator=(PackedSgemm&& other) noexcept;

  void prepare(const ConstMatrixRef& b);  // after the weights have changed
  void run(const ConstMatrixRef& a, MatrixRef c);
  double bytes() const;
  static double bytes_for(long m, long n, long k);

  struct Plan;  // the backend's

 private:
  std::unique_ptr<Plan> plan_;
};

// The portable bf16 product, for backends and CPUs without a native one: both operands widened
// to float (exactly), then the fp32 gemm(), into workspaces allocated once.
class WidenedBf16Gemm {
 public:
  WidenedBf16Gemm(const ConstMatrixBRef& a, const ConstMatrixBRef& b, Op op_a, Op op_b,
                  Bf16Gemm::B b_kind);
  void prepare(const ConstMatrixBRef& b);
  void run(const ConstMatrixBRef& a, const ConstMatrixBRef& b, MatrixRef c);
  double bytes() const;
  static double bytes_for(long rows_a, long cols_a, long rows_b, long cols_b);

 private:
  Op op_a_, op_b_;
  bool weights_;
  Matrix a_, b_;  // float copies of the operands as stored
};

// For the report: "Eigen 3.4.0", "oneDNN 2.6.3 (dnnl_sgemm)"; and how a bf16 product runs on
// this machine, found by planning one.
const char* gemm_backend();
const char* bf16_gemm_implementation();

// Called once at start-up, on the thread that will call gemm(): the MPI ranks are the
// parallelism, so the backend must not start threads of its own.
void gemm_use_one_thread();

}  // namespace tp_mlp

namespace tp_mlp {

// One call site's product in the model's element type T (float or bfloat16), with the same
// interface for both: a float product is one call, or a PackedSgemm where the weights are
// constant and it pays; a bf16 product keeps its Bf16Gemm.
template <typename T>
class PlannedGemm;

template <>
class PlannedGemm<float> {
 public:
  PlannedGemm(const ConstMatrixRef& a, const ConstMatrixRef& b, const MatrixRef& c, Op op_a,
              Op op_b, Bf16Gemm::B b_kind)
      : op_a_(op_a), op_b_(op_b) {
    if (packs(c.rows(), b_kind)) packed_.emplace(a, b, c, op_a, op_b);
  }
  void prepare(const ConstMatrixRef& b) {
    if (packed_) packed_->prepare(b);
  }
  void run(const ConstMatrixRef& a, const ConstMatrixRef& b, MatrixRef c) {
    if (packed_)
      packed_->run(a, c);
    else
      gemm(a, b, c, op_a_, op_b_);
  }
  double bytes() const { return packed_ ? packed_->bytes() : 0; }
  static double bytes_for(long m, long n, long k, Bf16Gemm::B b_kind) {
    return packs(m, b_kind) ? PackedSgemm::bytes_for(m, n, k) : 0;
  }

 private:
  static bool packs(long m, Bf16Gemm::B b_kind) {
    return b_kind == Bf16Gemm::B::weights && PackedSgemm::pays(m);
  }
  Op op_a_, op_b_;
  std::optional<PackedSgemm> packed_;
};

template <>
class PlannedGemm<bfloat16> {
 public:
  PlannedGemm(const ConstMatrixBRef& a, const ConstMatrixBRef& b, const MatrixRef& c, Op op_a,
              Op op_b, Bf16Gemm::B b_kind)
      : gemm_(a, b, c, op_a, op_b, b_kind) {}
  void prepare(const ConstMatrixBRef& b) { gemm_.prepare(b); }
  void run(const ConstMatrixBRef& a, const ConstMatrixBRef& b, MatrixRef c) { gemm_.run(a, b, c); }
  double bytes() const { return gemm_.bytes(); }
  static double bytes_for(long m, long n, long k, Bf16Gemm::B b_kind) {
    return Bf16Gemm::bytes_for(m, n, k, b_kind);
  }

 private:
  Bf16Gemm gemm_;
};

}  // namespace tp_mlp
