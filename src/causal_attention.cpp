// causal_attention: GEMMs on per-(sequence, head) blocks and a row-wise softmax (see
// causal_attention.hpp).
#include "tp_mlp/causal_attention.hpp"

#include <algorithm>
#include <cmath>

#include "tp_mlp/gemm.hpp"

namespace tp_mlp {
namespace {

// row = exp(row·scale − max)·factor: the one expression both passes evaluate, so that the
// backward's probabilities are the forward's bit for bit.
void exponentiate(Eigen::Ref<Eigen::RowVectorXf> row, float scale, float max, float factor) {
  row.array() = ((row.array() * scale) - max).exp() * factor;
}

// Calls f(first, end) for each tile [first, end) of kTileRows rows of [0, length).
template <typename F>
void for_each_tile(long length, F f) {
  for (long first = 0; first < length; first += CausalAttention::kTileRows)
    f(first, std::min(length, first + CausalAttention::kTileRows));
}

}  // namespace

CausalAttention::CausalAttention(Workspace& ws, long batch_size, long seq_len, long head_dim,
                                 long query_heads, bool backward)
    : batch_size_(batch_size),
      seq_len_(seq_len),
      head_dim_(head_dim),
      scale_(float(1.0 / std::sqrt(double(head_dim)))),
      kv_of_(ws.matrix<int>(1, query_heads)),
      row_max_(ws.matrix<float>(batch_size * seq_len, query_heads)),
      inverse_sum_(ws.matrix<float>(batch_size * seq_len, query_heads)),
      probabilities_(ws.matrix<float>(seq_len, seq_len)),
      probability_grad_(ws.matrix<float>(backward ? seq_len : 0, seq_len)),
      kv_grad_(ws.matrix<float>(backward ? seq_len : 0, head_dim)) {}

void CausalAttention::probabilities(const ConstMatrixRef& q, const ConstMatrixRef& k,
                                    long first_row, long h, bool learn) {
  for_each_tile(seq_len_, [&](long first, long end) {
    // S's rows [first, end), up to the tile's diagonal: Q's rows · (K's rows up to there)ᵀ
    gemm(q.middleRows(first, end - first), k.topRows(end),
         probabilities_.block(first, 0, end - first, end), Op::none, Op::transpose);
    for (long i = first; i < end; ++i) {
      auto row = probabilities_.row(i).head(i + 1);  // what token i sees: tokens 0..i
      float& max = row_max_(first_row + i, h);
      float& inverse_sum = inverse_sum_(first_row + i, h);
      if (learn) {
        max = row.maxCoeff() * scale_;  // = the largest scaled score: scale_ > 0, rounding monotone
        exponentiate(row, scale_, max, 1.0f);
        inverse_sum = 1.0f / row.sum();
        row *= inverse_sum;
      } else {
        exponentiate(row, scale_, max, inverse_sum);
      }
      probabilities_.row(i).segment(i + 1, end - i - 1).setZero();  // masked, within the tile
    }
  });
}

void CausalAttention::forward(const ConstMatrixRef& q, const ConstMatrixRef& k,
                              const ConstMatrixRef& v, MatrixRef out) {
  const long d = head_dim_;
  for (long h = 0; h < query_heads(); ++h) {
    const long kv = kv_of_(0, h);
    forward_head(h, q.middleCols(h * d, d), k.middleCols(kv * d, d), v.middleCols(kv * d, d),
                 out.middleCols(h * d, d));
  }
}

void CausalAttention::forward_head(long h, const ConstMatrixRef& q_h, const ConstMatrixRef& k_kv,
                                   const ConstMatrixRef& v_kv, MatrixRef out_h) {
  const long s = seq_len_;
  for (long sequence = 0; sequence < batch_size_; ++sequence) {
    const long first_row = sequence * s;
    probabilities(q_h.middleRows(first_row, s), k_kv.middleRows(first_row, s), first_row, h,
                  /*learn=*/true);
    const ConstMatrixRef v = v_kv.middleRows(first_row, s);
    for_each_tile(s, [&](long first, long end) {  // O's rows [first, end) = P's · V's rows
      gemm(probabilities_.block(first, 0, end - first, end), v.topRows(end),
           out_h.middleRows(first_row + first, end - first));
    });
  }
}

void CausalAttention::backward(const ConstMatrixRef& q, const ConstMatrixRef& k,
                               const ConstMatrixRef& v, const ConstMatrixRef& d_out, MatrixRef dq,
                               MatrixRef dk, MatrixRef dv) {
  const long d = head_dim_;
  dk.setZero();  // sums over the query heads that share a KV head (or none)
  dv.setZero();
  for (long h = 0; h < query_heads(); ++h) {
    const long kv = kv_of_(0, h);
    backward_head(h, q.middleCols(h * d, d), k.middleCols(kv * d, d), v.middleCols(kv * d, d),
                  d_out.middleCols(h * d, d), dq.middleCols(h * d, d), dk.middleCols(kv * d, d),
                  dv.middleCols(kv * d, d));
  }
}

void CausalAttention::backward_head(long h, const ConstMatrixRef& q_h, const ConstMatrixRef& k_kv,
                                    const ConstMatrixRef& v_kv, const ConstMatrixRef& d_out_h,
                                    MatrixRef dq_h, MatrixRef dk_kv, MatrixRef dv_kv) {
  const long s = seq_len_;
  auto& ds = probability_grad_;  // dP, then dS in place
  for (long sequence = 0; sequence < batch_size_; ++sequence) {
    const long first_row = sequence * s;
    const ConstMatrixRef q = q_h.middleRows(first_row, s), k = k_kv.middleRows(first_row, s);
    const ConstMatrixRef v = v_kv.middleRows(first_row, s);
    const ConstMatrixRef d_out = d_out_h.middleRows(first_row, s);
    probabilities(q, k, first_row, h, /*learn=*/false);
    for_each_tile(s, [&](long first, long end) {
      const long rows = end - first;
      gemm(d_out.middleRows(first, rows), v.topRows(end), ds.block(first, 0, rows, end), Op::none,
           Op::transpose);                  // dP = dO·Vᵀ
      for (long i = first; i < end; ++i) {  // dS = P ⊙ (dP − D)/√d, D = Σ_j P_ij·dP_ij
        const auto p = probabilities_.row(i).head(i + 1).array();
        auto ds_row = ds.row(i).head(i + 1).array();
        const float row_sum = (p * ds_row).sum();
        ds_row = p * (ds_row - row_sum) * scale_;
        ds.row(i).segment(i + 1, end - i - 1).setZero();
      }
      // dQ's rows [first, end) = dS's · K's rows up to the diagonal
      gemm(ds.block(first, 0, rows, end), k.topRows(end), dq_h.middleRows(first_row + first, rows));
    });
    // dK = dSᵀ·Q_h and dV = Pᵀ·dO_h, both weightsᵀ·rows, by tiles of key rows [first, end),
    // which only the query rows from `first` on see.
    auto add_kv_grad = [&](const Tensor<float>& weights, const ConstMatrixRef& rows,
                           MatrixRef grad) {
      for_each_tile(s, [&](long first, long end) {
        gemm(weights.block(first, first, s - first, end - first), rows.bottomRows(s - first),
             kv_grad_.middleRows(first, end - first), Op::transpose, Op::none);
      });
      grad.middleRows(first_row, s) += kv_grad_;
    };
    add_kv_grad(ds, q, dk_kv);
    add_kv_grad(probabilities_, d_out, dv_kv);
  }
}

}  // namespace tp_mlp
