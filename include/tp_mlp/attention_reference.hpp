// attention_reference: the attention block's parts in exact (float64) arithmetic, values only:
// plain loops over the definitions, sharing no code with the float parts (rope.hpp,
// causal_attention.hpp, norm.hpp, whose comments give the formulas), for the tests and the
// program's verification. Shapes and layouts are the float parts'; every buffer is the
// caller's.
#pragma once

#include "tp_mlp/causal_attention.hpp"
#include "tp_mlp/matrix.hpp"
#include "tp_mlp/norm.hpp"

namespace tp_mlp {

// x [tokens, heads·head_dim] rotated in place, token t at position t mod seq_len.
void exact_rope(MatrixDRef x, long seq_len, long head_dim, double theta);
// grad [tokens, heads·head_dim]: the output's gradient becomes the input's, in place.
void exact_rope_backward(MatrixDRef grad, long seq_len, long head_dim, double theta);

// out [tokens, nq·d] = causal attention of q [tokens, nq·d], k and v [tokens, nkv·d].
void exact_causal_attention(const ConstMatrixDRef& q, const ConstMatrixDRef& k,
                            const ConstMatrixDRef& v, long seq_len, const HeadLayout& heads,
                            MatrixDRef out);
// dq, dk, dv from d_out [tokens, nq·d].
void exact_causal_attention_backward(const ConstMatrixDRef& q, const ConstMatrixDRef& k,
                                     const ConstMatrixDRef& v, const ConstMatrixDRef& d_out,
                                     long seq_len, const HeadLayout& heads, MatrixDRef dq,
                                     MatrixDRef dk, MatrixDRef dv);

// y [rows, H] = norm(x [rows, H]) with w [1, H] and, for LayerNorm, b [1, H].
void exact_norm(NormKind kind, const ConstMatrixDRef& x, const ConstMatrixDRef& w,
                const ConstMatrixDRef& b, double eps, MatrixDRef y);
// dx [rows, H], dw [1, H] and, for LayerNorm, db [1, H] (summed over the rows), from dy.
void exact_norm_backward(NormKind kind, const ConstMatrixDRef& x, const ConstMatrixDRef& w,
                         const ConstMatrixDRef& dy, double eps, MatrixDRef dx, MatrixDRef dw,
                         MatrixDRef db);

}  // namespace tp_mlp
