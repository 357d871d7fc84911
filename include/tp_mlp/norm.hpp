// norm: the normalisations before attention and the MLP, over each token's H features (a row of
// [tokens, H]), in float:
//
//   RMSNorm (LLaMA):   y = x·r ⊙ w,            r = 1/√(mean(x²) + eps)
//   LayerNorm (GPT-2): y = (x − μ)·r ⊙ w + b,  r = 1/√(mean((x − μ)²) + eps), μ = mean(x)
//
// RMSNorm is LayerNorm without the centring and the bias, so one code path serves both, with
// μ = 0 for RMSNorm. The variance is the mean of the centred squares (two passes over the row),
// not mean(x²) − μ², which cancels when |μ| is large next to the spread.
//
// Backward, from dy, with x̂ = (x − μ)·r and g = dy ⊙ w:
//
//   dx = r·(g − mean(g) − x̂·mean(g ⊙ x̂))   (RMSNorm: without the mean(g) term)
//   dw = Σ_rows dy ⊙ x̂,  db = Σ_rows dy
//
// The forward keeps what the backward needs beside x: each row's r, and for LayerNorm its μ
// ([tokens, 1] each), from which x̂ is recomputed. dw and db are summed over the rows this part
// holds; where a layer's rows are spread over ranks (sequence parallelism), the caller sums
// them over the group.
#pragma once

#include "tp_mlp/config.hpp"
#include "tp_mlp/matrix.hpp"
#include "tp_mlp/workspace.hpp"

namespace tp_mlp {

// LLaMA's and GPT-2's eps.
constexpr float kNormEps = 1e-5f;

class Norm {
 public:
  // For [rows, width] inputs; eps is added to the variance (1e-5 in LLaMA and GPT-2).
  Norm(Workspace& ws, NormKind kind, long rows, long width, float eps, bool backward);

  // The parameters, to fill (or change): w [1, width], and b [1, width] for LayerNorm (empty
  // for RMSNorm).
  Tensor<float>& weight() { return weight_; }
  Tensor<float>& bias() { return bias_; }
  long parameter_count() const { return long(weight_.size() + bias_.size()); }

  // output [rows, width] = norm(x [rows, width]).
  void forward(const ConstMatrixRef& x);
  const Tensor<float>& output() const { return output_; }

  // From the output's gradient dy, for the x the last forward read (the caller keeps it): the
  // input's gradient and the parameters' (summed over the rows).
  void backward(const ConstMatrixRef& x, const ConstMatrixRef& dy);
  const Tensor<float>& input_grad() const { return input_grad_; }
  const Tensor<float>& weight_grad() const { return weight_grad_; }
  const Tensor<float>& bias_grad() const { return bias_grad_; }
  // The same, for a caller that sums them over the ranks holding the other rows, in place.
  Tensor<float>& weight_grad() { return weight_grad_; }
  Tensor<float>& bias_grad() { return bias_grad_; }

 private:
  bool centred() const { return kind_ == NormKind::layer; }

  const NormKind kind_;
  const float eps_;
  Tensor<float> weight_;       // [1, width]
  Tensor<float> bias_;         // [1, width], LayerNorm only
  Tensor<float> output_;       // [rows, width]
  Tensor<float> mean_;         // [rows, 1]: μ, LayerNorm only
  Tensor<float> inverse_rms_;  // [rows, 1]: r, 1/√(variance + eps)
  Tensor<float> input_grad_;   // [rows, width] (backward only)
  Tensor<float> weight_grad_;  // [1, width] (backward only)
  Tensor<float> bias_grad_;    // [1, width] (backward, LayerNorm only)
};

}  // namespace tp_mlp
