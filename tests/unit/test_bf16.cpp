// bf16 conversions: round to nearest even, ties to even, float denormals to signed zero, NaN
// kept quiet, overflow to infinity; and the rounded sum a bf16 reduction performs.
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>

#include <gtest/gtest.h>

#include "tp_mlp/bf16.hpp"

using namespace tp_mlp;

namespace {
constexpr float kHalfUlpOfOne = 0x1p-8f;  // bf16 has 8 significant bits: ulp(1) = 2^-7
}

TEST(Bf16, RepresentableValuesAreExact) {
  for (float x : {0.0f, 1.0f, -2.5f, 0x1.fep+3f, 0x1p-126f, -0x1p+127f})
    EXPECT_EQ(round_to_bf16(x), x) << x;
}

TEST(Bf16, RoundsToNearestAndTiesToEven) {
  EXPECT_EQ(round_to_bf16(1.0f + kHalfUlpOfOne), 1.0f);                          // tie: even 1.0
  EXPECT_EQ(round_to_bf16(1.0f + 3 * kHalfUlpOfOne), 1.0f + 4 * kHalfUlpOfOne);  // tie: even
  EXPECT_EQ(round_to_bf16(1.0f + kHalfUlpOfOne + 0x1p-20f), 1.0f + 2 * kHalfUlpOfOne);
  EXPECT_EQ(round_to_bf16(1.0f + kHalfUlpOfOne - 0x1p-20f), 1.0f);
  EXPECT_EQ(round_to_bf16(-(1.0f + kHalfUlpOfOne + 0x1p-20f)), -(1.0f + 2 * kHalfUlpOfOne));
}

TEST(Bf16, AgreesWithEigensRoundingForNormalNumbers) {
  std::mt19937 random(7);
  std::uniform_int_distribution<std::uint32_t> bits;
  int compared = 0;
  while (compared < 100000) {
    const std::uint32_t u = bits(random);
    float x;
    std::memcpy(&x, &u, sizeof x);
    if (!std::isnormal(x) || std::abs(x) > 0x1.fep+127f) continue;
    EXPECT_EQ(round_to_bf16(x), static_cast<float>(bfloat16(x))) << x;
    ++compared;
  }
}

TEST(Bf16, DenormalsFlushToSignedZero) {
  EXPECT_EQ(round_to_bf16(1e-40f), 0.0f);
  EXPECT_TRUE(std::signbit(round_to_bf16(-1e-40f)));
  EXPECT_EQ(round_to_bf16(-1e-40f), 0.0f);
}

TEST(Bf16, SpecialValues) {
  const float infinity = std::numeric_limits<float>::infinity();
  EXPECT_EQ(round_to_bf16(FLT_MAX), infinity);  // beyond bf16's largest finite value
  EXPECT_EQ(round_to_bf16(-infinity), -infinity);
  EXPECT_TRUE(std::isnan(round_to_bf16(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(std::isnan(round_to_bf16(std::numeric_limits<float>::signaling_NaN())));
}

// The trap a bf16 all-reduce sets: every addition rounds to 8 bits, so a partial sum smaller
// than half an ulp of the running sum is lost, where an fp32 reduction keeps it.
TEST(Bf16, EachAdditionOfAReductionRounds) {
  const std::uint16_t small = bf16_bits(kHalfUlpOfOne);
  std::uint16_t sum = bf16_bits(1.0f);
  add_bf16(&small, &sum, 1);
  EXPECT_EQ(bf16_value(sum), 1.0f);
  const std::uint16_t larger = bf16_bits(3 * kHalfUlpOfOne);
  add_bf16(&larger, &sum, 1);
  EXPECT_EQ(bf16_value(sum), 1.0f + 4 * kHalfUlpOfOne);
}
