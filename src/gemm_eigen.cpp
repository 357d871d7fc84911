// gemm: Eigen's single-threaded GEMM, the backend that needs nothing beyond Eigen itself.
#include "tp_mlp/gemm.hpp"

#define TP_MLP_STR2(x) #x
#define TP_MLP_STR(x) TP_MLP_STR2(x)

namespace tp_mlp {

void gemm(const ConstMatrixRef& a, const ConstMatrixRef& b, MatrixRef c, Op op_a, Op op_b) {
  // Eigen's product reads a .transpose() in place; each combination is its own expression.
  const bool ta = op_a == Op::transpose, tb = op_b == Op::transpose;
  if (!ta && !tb) c.noalias() = a * b;
  if (!ta && tb) c.noalias() = a * b.transpose();
  if (ta && !tb) c.noalias() = a.transpose() * b;
  if (ta && tb) c.noalias() = a.transpose() * b.transpose();
}

// Built with EIGEN_DONT_PARALLELIZE: Eigen's GEMM never starts a thread.
void gemm_use_one_thread() {}

const char* gemm_backend() {
  return "Eigen " TP_MLP_STR(EIGEN_WORLD_VERSION) "." TP_MLP_STR(
      EIGEN_MAJOR_VERSION) "." TP_MLP_STR(EIGEN_MINOR_VERSION);
}

// Eigen's own bfloat16 product rounds every sum to bf16; widening to float is exact and
// accumulates in fp32, as the model needs.
struct Bf16Gemm::Plan {
  WidenedBf16Gemm widened;
};

Bf16Gemm::Bf16Gemm(const ConstMatrixBRef& a, const ConstMatrixBRef& b, const MatrixRef&, Op op_a,
                   Op op_b, B b_kind)
    : plan_(std::make_unique<Plan>(Plan{WidenedBf16Gemm(a, b, op_a, op_b, b_kind)})) {}
Bf16Gemm::~Bf16Gemm() = default;
Bf16Gemm::Bf16Gemm(Bf16Gemm&& other) noexcept = default;
Bf16Gemm& Bf16Gemm::operator=(Bf16Gemm&& other) noexcept = default;

void Bf16Gemm::prepare(const ConstMatrixBRef& b) { plan_->widened.prepare(b); }

void Bf16Gemm::run(const ConstMatrixBRef& a, const ConstMatrixBRef& b, MatrixRef c) {
  plan_->widened.run(a, b, c);
}

// Plans count themselves too: they are allocated beside the scheme.
double Bf16Gemm::bytes() const { return sizeof(Plan) + plan_->widened.bytes(); }

double Bf16Gemm::bytes_for(long m, long n, long k, B) {
  return sizeof(Plan) + WidenedBf16Gemm::bytes_for(m, k, k, n);
}

const char* Bf16Gemm::implementation() const { return "widened to fp32, Eigen's GEMM"; }

// Eigen's GEMM takes no packed operand: PlannedGemm never packs here, and a PackedSgemm made
// anyway is the plain product.
bool PackedSgemm::pays(long) { return false; }

struct PackedSgemm::Plan {
  Op op_a, op_b;
  Matrix b;  // a copy: the weights as of prepare()
};

PackedSgemm::PackedSgemm(const ConstMatrixRef&, const ConstMatrixRef& b, const MatrixRef&, Op op_a,
                         Op op_b)
    : plan_(std::make_unique<Plan>(Plan{op_a, op_b, b})) {}
PackedSgemm::~PackedSgemm() = default;
PackedSgemm::PackedSgemm(PackedSgemm&& other) noexcept = default;
PackedSgemm& PackedSgemm::operator=(PackedSgemm&& other) noexcept = default;

void PackedSgemm::prepare(const ConstMatrixRef& b) { plan_->b = b; }

void PackedSgemm::run(const ConstMatrixRef& a, MatrixRef c) {
  gemm(a, plan_->b, c, plan_->op_a, plan_->op_b);
}

double PackedSgemm::bytes() const { return sizeof(Plan) + double(plan_->b.size()) * sizeof(float); }

double PackedSgemm::bytes_for(long, long n, long k) {
  return sizeof(Plan) + double(n * k) * sizeof(float);
}

}  // namespace tp_mlp
