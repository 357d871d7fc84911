// bf16: branch-free conversions that the compiler vectorises (see bf16.hpp).
#include "tp_mlp/bf16.hpp"

#include <cstring>

namespace tp_mlp {

std::uint16_t bf16_bits(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  const std::uint32_t exponent = u & 0x7f800000u;
  u = exponent == 0 ? u & 0x80000000u : u;  // a float denormal becomes a signed zero
  const std::uint32_t nearest_even = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  const std::uint32_t quiet_nan = (u >> 16) | 0x40u;
  return std::uint16_t((u & 0x7fffffffu) > 0x7f800000u ? quiet_nan : nearest_even);
}

float bf16_value(std::uint16_t bits) {
  const std::uint32_t u = std::uint32_t(bits) << 16;
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

void to_bf16(const ConstMatrixRef& in, MatrixBRef out) {
  for (Eigen::Index r = 0; r < in.rows(); ++r) {
    const float* from = in.data() + r * in.outerStride();
    auto* to = reinterpret_cast<std::uint16_t*>(out.data() + r * out.outerStride());
    for (Eigen::Index c = 0; c < in.cols(); ++c) to[c] = bf16_bits(from[c]);
  }
}

void to_float(const ConstMatrixBRef& in, MatrixRef out) {
  for (Eigen::Index r = 0; r < in.rows(); ++r) {
    const auto* from = reinterpret_cast<const std::uint16_t*>(in.data() + r * in.outerStride());
    float* to = out.data() + r * out.outerStride();
    for (Eigen::Index c = 0; c < in.cols(); ++c) to[c] = bf16_value(from[c]);
  }
}

void round_to_bf16(MatrixRef m) {
  for (Eigen::Index r = 0; r < m.rows(); ++r) {
    float* row = m.data() + r * m.outerStride();
    for (Eigen::Index c = 0; c < m.cols(); ++c) row[c] = round_to_bf16(row[c]);
  }
}

void add_bf16(const std::uint16_t* in, std::uint16_t* out, long n) {
  for (long i = 0; i < n; ++i) out[i] = bf16_bits(bf16_value(in[i]) + bf16_value(out[i]));
}

}  // namespace tp_mlp
