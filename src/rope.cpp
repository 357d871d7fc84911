// rope: LLaMA's rotary position embedding from tables (see rope.hpp).
#include "tp_mlp/rope.hpp"

#include <cmath>

namespace tp_mlp {

Rope::Rope(Workspace& ws, long seq_len, long head_dim, double theta)
    : seq_len_(seq_len),
      head_dim_(head_dim),
      cos_(ws.matrix<float>(seq_len, head_dim / 2)),
      sin_(ws.matrix<float>(seq_len, head_dim / 2)) {
  if (ws.planning()) return;  // the layout is all a plan needs
  for (long p = 0; p < seq_len; ++p)
    for (long i = 0; i < head_dim / 2; ++i) {
      // The angle in double, each entry rounded once to float. (HF computes the angle itself in
      // float, off by up to about |angle|·2⁻²⁴ radians: at position 4096, a few 1e-4.)
      const double angle = double(p) * std::pow(theta, -2.0 * double(i) / double(head_dim));
      cos_(p, i) = float(std::cos(angle));
      sin_(p, i) = float(std::sin(angle));
    }
}

void Rope::forward(MatrixRef x) const { rotate(x, 1.0f); }

void Rope::backward(MatrixRef grad) const { rotate(grad, -1.0f); }

void Rope::rotate(MatrixRef x, float direction) const {
  const long half = head_dim_ / 2, heads = x.cols() / head_dim_;
  for (long row = 0; row < x.rows(); ++row) {
    const float* cos = cos_.row(row % seq_len_).data();
    const float* sin = sin_.row(row % seq_len_).data();
    for (long h = 0; h < heads; ++h) {
      float* x1 = x.row(row).data() + h * head_dim_;  // the first half of the head's features
      float* x2 = x1 + half;                          // and the second
      // Both halves change, each from the other's old value: one loop over the pairs (which
      // the compiler vectorises) rather than two array assignments and a copy.
      for (long i = 0; i < half; ++i) {
        const float a = x1[i], b = x2[i], s = direction * sin[i];
        x1[i] = a * cos[i] - b * s;
        x2[i] = b * cos[i] + a * s;
      }
    }
  }
}

}  // namespace tp_mlp
