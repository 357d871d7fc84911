// attention_reference: RoPE, causal attention and the norms in double, by their definitions
// (see attention_reference.hpp).
#include "tp_mlp/attention_reference.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace tp_mlp {
namespace {

// Each pair (i, i + d/2) of each head of each row turned by position·θ^(−2i/d)·direction.
void exact_rotate(MatrixDRef x, long seq_len, long head_dim, double theta, double direction) {
  const long half = head_dim / 2;
  for (long row = 0; row < x.rows(); ++row)
    for (long head = 0; head < x.cols() / head_dim; ++head)
      for (long i = 0; i < half; ++i) {
        const double angle = direction * double(row % seq_len) *
                             std::pow(theta, -2.0 * double(i) / double(head_dim));
        const long c1 = head * head_dim + i, c2 = c1 + half;
        const double x1 = x(row, c1), x2 = x(row, c2);
        x(row, c1) = x1 * std::cos(angle) - x2 * std::sin(angle);
        x(row, c2) = x2 * std::cos(angle) + x1 * std::sin(angle);
      }
}

// The scaled score of query row i of head h against key row j of KV head kv.
double exact_score(const ConstMatrixDRef& q, const ConstMatrixDRef& k, long i, long j, long h,
                   long kv, long d) {
  double dot = 0;
  for (long c = 0; c < d; ++c) dot += q(i, h * d + c) * k(j, kv * d + c);
  return dot / std::sqrt(double(d));
}

// The softmax of query row i of head h over key rows [first, i] (its sequence's, up to it): its
// largest score and its sum of exponentials, so that P_ij = probability(score_ij). The scores
// are recomputed where they are needed rather than kept: the reference allocates nothing.
struct RowSoftmax {
  double max = -std::numeric_limits<double>::infinity();
  double sum = 0;
  double probability(double score) const { return std::exp(score - max) / sum; }
};
RowSoftmax exact_softmax(const ConstMatrixDRef& q, const ConstMatrixDRef& k, long first, long i,
                         long h, long kv, long d) {
  RowSoftmax softmax;
  for (long j = first; j <= i; ++j)
    softmax.max = std::max(softmax.max, exact_score(q, k, i, j, h, kv, d));
  for (long j = first; j <= i; ++j)
    softmax.sum += std::exp(exact_score(q, k, i, j, h, kv, d) - softmax.max);
  return softmax;
}

// A norm's statistics of one row of x: μ (0 for RMSNorm) and r = 1/√(variance + eps).
struct RowStatistics {
  double mean = 0;
  double r = 0;
};
RowStatistics exact_statistics(NormKind kind, const ConstMatrixDRef& x, long row, double eps) {
  const long width = x.cols();
  RowStatistics stats;
  if (kind == NormKind::layer) {
    for (long c = 0; c < width; ++c) stats.mean += x(row, c);
    stats.mean /= double(width);
  }
  double variance = 0;
  for (long c = 0; c < width; ++c) variance += (x(row, c) - stats.mean) * (x(row, c) - stats.mean);
  stats.r = 1.0 / std::sqrt(variance / double(width) + eps);
  return stats;
}

}  // namespace

void exact_rope(MatrixDRef x, long seq_len, long head_dim, double theta) {
  exact_rotate(x, seq_len, head_dim, theta, 1.0);
}

void exact_rope_backward(MatrixDRef grad, long seq_len, long head_dim, double theta) {
  exact_rotate(grad, seq_len, head_dim, theta, -1.0);
}

void exact_causal_attention(const ConstMatrixDRef& q, const ConstMatrixDRef& k,
                            const ConstMatrixDRef& v, long seq_len, const HeadLayout& heads,
                            MatrixDRef out) {
  const long d = heads.head_dim;
  for (long i = 0; i < q.rows(); ++i)
    for (long h = 0; h < heads.query_heads(); ++h) {
      const long first = i / seq_len * seq_len, kv = heads.kv_of[std::size_t(h)];
      const RowSoftmax softmax = exact_softmax(q, k, first, i, h, kv, d);
      out.row(i).segment(h * d, d).setZero();
      for (long j = first; j <= i; ++j) {  // O_i = Σ_j P_ij·V_j
        const double p = softmax.probability(exact_score(q, k, i, j, h, kv, d));
        for (long c = 0; c < d; ++c) out(i, h * d + c) += p * v(j, kv * d + c);
      }
    }
}

void exact_causal_attention_backward(const ConstMatrixDRef& q, const ConstMatrixDRef& k,
                                     const ConstMatrixDRef& v, const ConstMatrixDRef& d_out,
                                     long seq_len, const HeadLayout& heads, MatrixDRef dq,
                                     MatrixDRef dk, MatrixDRef dv) {
  const long d = heads.head_dim;
  const double scale = 1.0 / std::sqrt(double(d));
  dq.setZero();
  dk.setZero();
  dv.setZero();
  for (long i = 0; i < q.rows(); ++i)
    for (long h = 0; h < heads.query_heads(); ++h) {
      const long first = i / seq_len * seq_len, kv = heads.kv_of[std::size_t(h)];
      const RowSoftmax softmax = exact_softmax(q, k, first, i, h, kv, d);
      auto p = [&](long j) { return softmax.probability(exact_score(q, k, i, j, h, kv, d)); };
      auto dp = [&](long j) {  // dP_ij = dO_i·V_j
        double dot = 0;
        for (long c = 0; c < d; ++c) dot += d_out(i, h * d + c) * v(j, kv * d + c);
        return dot;
      };
      double row_sum = 0;  // D_i = Σ_j P_ij·dP_ij
      for (long j = first; j <= i; ++j) row_sum += p(j) * dp(j);
      for (long j = first; j <= i; ++j) {
        const double p_ij = p(j), ds = p_ij * (dp(j) - row_sum) * scale;
        for (long c = 0; c < d; ++c) {
          dq(i, h * d + c) += ds * k(j, kv * d + c);
          dk(j, kv * d + c) += ds * q(i, h * d + c);
          dv(j, kv * d + c) += p_ij * d_out(i, h * d + c);
        }
      }
    }
}

void exact_norm(NormKind kind, const ConstMatrixDRef& x, const ConstMatrixDRef& w,
                const ConstMatrixDRef& b, double eps, MatrixDRef y) {
  for (long row = 0; row < x.rows(); ++row) {
    const RowStatistics stats = exact_statistics(kind, x, row, eps);
    for (long c = 0; c < x.cols(); ++c)
      y(row, c) =
          (x(row, c) - stats.mean) * stats.r * w(0, c) + (kind == NormKind::layer ? b(0, c) : 0.0);
  }
}

void exact_norm_backward(NormKind kind, const ConstMatrixDRef& x, const ConstMatrixDRef& w,
                         const ConstMatrixDRef& dy, double eps, MatrixDRef dx, MatrixDRef dw,
                         MatrixDRef db) {
  const long width = x.cols();
  const bool layer = kind == NormKind::layer;
  dw.setZero();
  if (layer) db.setZero();
  for (long row = 0; row < x.rows(); ++row) {
    const RowStatistics stats = exact_statistics(kind, x, row, eps);
    const double mean = stats.mean, r = stats.r;
    double g_mean = 0, gx_mean = 0;  // mean(g) (LayerNorm), mean(g ⊙ x̂); g = dy ⊙ w
    auto x_hat = [&](long c) { return (x(row, c) - mean) * r; };
    for (long c = 0; c < width; ++c) {
      const double g = dy(row, c) * w(0, c);
      if (layer) g_mean += g / double(width);
      gx_mean += g * x_hat(c) / double(width);
    }
    for (long c = 0; c < width; ++c) {
      const double g = dy(row, c) * w(0, c);
      dx(row, c) = r * (g - g_mean - x_hat(c) * gx_mean);
      dw(0, c) += dy(row, c) * x_hat(c);
      if (layer) db(0, c) += dy(row, c);
    }
  }
}

}  // namespace tp_mlp
