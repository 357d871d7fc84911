// causal_attention: scaled dot-product attention with a causal mask, for the heads this rank
// holds, as each rank of a tensor-parallel layer runs it: heads are independent, so a rank with
// whole heads needs no communication here.
//
// Per sequence and query head h, with KV head kv = kv_of[h] (grouped-query attention: several
// query heads may share one KV head; one each is multi-head attention):
//
//   S = Q_h·K_kvᵀ/√d   [s, s], masked causally: token i sees tokens j ≤ i of its own sequence
//   P = softmax(S)     row by row, its largest score subtracted first
//   O_h = P·V_kv       [s, d]
//
// The rows hold whole sequences one after another (sequence k in rows [k·s, (k+1)·s)); head h
// is columns [h·d, (h+1)·d) of Q and O, KV head kv columns [kv·d, (kv+1)·d) of K and V. The
// products are GEMMs on each sequence's blocks of those columns, in tiles of query rows that
// stop at the diagonal, so that the masked half of S is mostly never computed. The softmax and
// its gradient are Eigen array expressions, row by row.
//
// Backward, from dO (D_i = Σ_j P_ij·dP_ij, the softmax's gradient in one row):
//
//   dP = dO_h·V_kvᵀ,  dS = P ⊙ (dP − D)/√d,  dQ_h = dS·K_kv,
//   dK_kv = Σ_h dSᵀ·Q_h,  dV_kv = Σ_h Pᵀ·dO_h   (the sums over the query heads sharing kv).
//
// What the backward keeps: not P, which is [s, s] per sequence and head, but each row's largest
// scaled score and the reciprocal of its sum of exponentials, two floats per row and head, from
// which it recomputes P with the forward's own operations on the same scores (the same GEMM on
// the same inputs, the same expression), so that the probabilities it differentiates are the
// forward's to the bit. The price is one more QKᵀ product: seven products in a forward and
// backward instead of six.
//
// fp32 whatever the model's type: Q, K and V, every product and the softmax are float (a bf16
// model's projections give float Q, K and V, as attention kernels keep the softmax in fp32).
#pragma once

#include <vector>

#include "tp_mlp/matrix.hpp"
#include "tp_mlp/workspace.hpp"

namespace tp_mlp {

// The heads one rank holds: query head h (0 ≤ h < query_heads()) uses local KV head kv_of[h].
struct HeadLayout {
  long head_dim = 0;
  long kv_heads = 0;
  std::vector<int> kv_of;
  long query_heads() const { return long(kv_of.size()); }
};

class CausalAttention {
 public:
  // Query rows per GEMM tile. Of S, only the upper triangles of the diagonal tiles are computed
  // and then masked, a fraction tile/s of the whole; the tiles' products stay large enough for
  // the backend's peak. Measured (dnnl_sgemm, AVX-512, s = 1024 and 2048, d = 128): 1.7-1.9x as
  // fast as whole [s, s] products; 32 to 256 rows within the noise of one another.
  static constexpr long kTileRows = 64;

  // For batch_size sequences of seq_len tokens, this rank's heads.
  CausalAttention(Workspace& ws, long batch_size, long seq_len, const HeadLayout& heads,
                  bool backward)
      : CausalAttention(
            ws, batch_size, seq_len, heads.head_dim, heads.query_heads(),
            [&](long h) { return heads.kv_of[std::size_t(h)]; }, backward) {}
  // The same with a rule, query head h using local KV head kv_of(h), instead of a table: what
  // a scheme builds with, so that building allocates nothing beside the workspace.
  template <typename KvOf>
  CausalAttention(Workspace& ws, long batch_size, long seq_len, long head_dim, long query_heads,
                  KvOf kv_of, bool backward)
      : CausalAttention(ws, batch_size, seq_len, head_dim, query_heads, backward) {
    if (ws.planning()) return;  // the layout is all a plan needs
    for (long h = 0; h < query_heads; ++h) kv_of_(0, h) = int(kv_of(h));
  }

  // out [tokens, nq·d] from q [tokens, nq·d], k and v [tokens, nkv·d]; each may be a column
  // slice of a wider matrix (the fused QKV projection's output, say).
  void forward(const ConstMatrixRef& q, const ConstMatrixRef& k, const ConstMatrixRef& v,
               MatrixRef out);
  // dq [tokens, nq·d], dk and dv [tokens, nkv·d] from d_out [tokens, nq·d], for the q, k and v
  // the last forward read (the caller keeps them); the gradients may be column slices of one
  // fused matrix, as the QKV projection's backward reads them.
  void backward(const ConstMatrixRef& q, const ConstMatrixRef& k, const ConstMatrixRef& v,
                const ConstMatrixRef& d_out, MatrixRef dq, MatrixRef dk, MatrixRef dv);

  // The same for one query head h: q_h and out_h [tokens, d] its own, k_kv and v_kv [tokens, d]
  // its KV head's, each its own matrix or a column block of a wider one (--invariant gives
  // every head matrices of its own, whose products have the same strides at every T). Backward
  // writes dq_h and adds the head's part of its KV head's gradients into dk_kv and dv_kv.
  void forward_head(long h, const ConstMatrixRef& q_h, const ConstMatrixRef& k_kv,
                    const ConstMatrixRef& v_kv, MatrixRef out_h);
  void backward_head(long h, const ConstMatrixRef& q_h, const ConstMatrixRef& k_kv,
                     const ConstMatrixRef& v_kv, const ConstMatrixRef& d_out_h, MatrixRef dq_h,
                     MatrixRef dk_kv, MatrixRef dv_kv);

 private:
  // Every buffer, the KV heads' table unfilled.
  CausalAttention(Workspace& ws, long batch_size, long seq_len, long head_dim, long query_heads,
                  bool backward);
  // probabilities_ = P for the sequence whose rows start at `first_row`, query head h, from
  // its blocks of Q and K: the scores' GEMMs, then each row's softmax, learning its statistics
  // (forward) or using the kept ones (backward). Entries right of the diagonal within each tile
  // are zero; those beyond the tile are not written.
  void probabilities(const ConstMatrixRef& q, const ConstMatrixRef& k, long first_row, long h,
                     bool learn);
  long query_heads() const { return kv_of_.cols(); }

  const long batch_size_, seq_len_, head_dim_;
  const float scale_;               // 1/√d
  Tensor<int> kv_of_;               // [1, nq]
  Tensor<float> row_max_;           // [tokens, nq]: each row's largest scaled score
  Tensor<float> inverse_sum_;       // [tokens, nq]: 1/Σ_j exp(score_j − max)
  Tensor<float> probabilities_;     // [s, s]: P, one sequence and head at a time
  Tensor<float> probability_grad_;  // [s, s]: dP, then dS in place (backward only)
  Tensor<float> kv_grad_;           // [s, d]: one query head's part of dK or dV (backward only)
};

}  // namespace tp_mlp
