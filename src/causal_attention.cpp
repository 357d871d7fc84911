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
  const long s = seq_len_, d = head_dim_;
  for (long sequence = 0; sequence < batch_size_; ++sequence)
    for (long h = 0; h < query_heads(); ++h) {
      const long first_row = sequence * s, kv = kv_of_(0, h);
      const ConstMatrixRef q_h = q.block(first_row, h * d, s, d);
      const ConstMatrixRef k_kv = k.block(first_row, kv * d, s, d);
      const ConstMatrixRef v_kv = v.block(first_row, kv * d, s, d);
      probabilities(q_h, k_kv, first_row, h, /*learn=*/true);
      for_each_tile(s, [&](long first, long end) {  // O's rows [first, end) = P's · V's rows
        gemm(probabilities_.block(first, 0, end - first, end), v_kv.topRows(end),
             out.block(first_row + first, h * d, end - first, d));
      });
    }
}

void CausalAttention::backward(const ConstMatrixRef& q, const ConstMatrixRef& k,
                               const ConstMatrixRef& v, const ConstMatrixRef& d_out, MatrixRef dq,
                               MatrixRef dk, MatrixRef dv) {
  const long s = seq_len_, d = head_dim_;
  dk.setZero();  // sums over the query heads that share a KV head (or none)
  dv.setZero();
  auto& ds = probability_grad_;  // dP, then dS in place
  for (long sequence = 0; sequence < batch_size_; ++sequence)
    for (long h = 0; h < query_heads(); ++h) {
      const long first_row = sequence * s, kv = kv_of_(0, h);
      const ConstMatrixRef q_h = q.block(first_row, h * d, s, d);
      const ConstMatrixRef k_kv = k.block(first_row, kv * d, s, d);
      const ConstMatrixRef v_kv = v.block(first_row, kv * d, s, d);
      const ConstMatrixRef d_out_h = d_out.block(first_row, h * d, s, d);
      probabilities(q_h, k_kv, first_row, h, /*learn=*/false);
      for_each_tile(s, [&](long first, long end) {
        const long rows = end - first;
        gemm(d_out_h.middleRows(first, rows), v_kv.topRows(end), ds.block(first, 0, rows, end),
             Op::none, Op::transpose);        // dP = dO·Vᵀ
        for (long i = first; i < end; ++i) {  // dS = P ⊙ (dP − D)/√d, D = Σ_j P_ij·dP_ij
          const auto p = probabilities_.row(i).head(i + 1).array();
          auto ds_row = ds.row(i).head(i + 1).array();
          const float row_sum = (p * ds_row).sum();
          ds_row = p * (ds_row - row_sum) * scale_;
          ds.row(i).segment(i + 1, end - i - 1).setZero();
        }
        // dQ's rows [first, end) = dS's · K's rows up to the diagonal
        gemm(ds.block(first, 0, rows, end), k_kv.topRows(end),
             dq.block(first_row + first, h * d, rows, d));
      });
      // dK = dSᵀ·Q_h and dV = Pᵀ·dO_h, both weightsᵀ·rows, by tiles of key rows [first, end),
      // which only the query rows from `first` on see.
      auto add_kv_grad = [&](const Tensor<float>& weights, const ConstMatrixRef& rows,
                             MatrixRef grad) {
        for_each_tile(s, [&](long first, long end) {
          gemm(weights.block(first, first, s - first, end - first), rows.bottomRows(s - first),
               kv_grad_.middleRows(first, end - first), Op::transpose, Op::none);
        });
        grad.block(first_row, kv * d, s, d) += kv_grad_;
      };
      add_kv_grad(ds, q_h, dk);
      add_kv_grad(probabilities_, d_out_h, dv);
    }
}

}  // namespace tp_mlp
