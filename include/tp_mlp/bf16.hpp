// bf16: the 16-bit brain float, as storage. Every conversion from float rounds to nearest even
// and flushes float denormals to zero, exactly as the CPUs' vcvtneps2bf16 and oneDNN do, so that
// every rank, CPU generation and code path rounds a number the same way. Arithmetic is never
// done in bf16: products of two bf16 numbers are exact in float, and sums accumulate in float.
#pragma once

#include <cstdint>
#include <type_traits>

#include "tp_mlp/matrix.hpp"

namespace tp_mlp {

using bfloat16 = Eigen::bfloat16;
using MatrixB = RowMajor<bfloat16>;
using ConstMatrixBRef = ConstRef<bfloat16>;
using MatrixBRef = Ref<bfloat16>;

// A model's element type T is float or bfloat16; code that differs between them asks this.
template <typename T>
inline constexpr bool kIsFloat = std::is_same_v<T, float>;
static_assert(sizeof(bfloat16) == sizeof(std::uint16_t), "bf16 is stored as its 16 bits");

inline constexpr double kBf16UnitRoundoff = 0x1p-8;  // 8 significant bits

std::uint16_t bf16_bits(float x);      // round to nearest even, denormals to zero
float bf16_value(std::uint16_t bits);  // exact
// x rounded to the nearest bf16, as a float: what a bf16 tensor holds.
inline float round_to_bf16(float x) { return bf16_value(bf16_bits(x)); }

// What a GEMM of element type T reads of a float value: the value itself, or in a bf16 model
// its copy `rounded` (the same shape), which the model keeps beside it and fills by to_bf16.
template <typename T>
ConstRef<T> gemm_input(const Tensor<float>& value, const Tensor<T>& rounded) {
  if constexpr (kIsFloat<T>)
    return value;
  else
    return rounded;
}

void to_bf16(const ConstMatrixRef& in, MatrixBRef out);
void to_float(const ConstMatrixBRef& in, MatrixRef out);
void round_to_bf16(MatrixRef m);  // in place: float storage, bf16 values
// out[i] = round(in[i] + out[i]): the bf16 sum an all-reduce of bf16 partials performs.
void add_bf16(const std::uint16_t* in, std::uint16_t* out, long n);

}  // namespace tp_mlp
