// init: counter-based SplitMix64 sampling of the master tensors (see init.hpp for why).
#include "tp_mlp/init.hpp"

#include <cmath>

#include "tp_mlp/bf16.hpp"
#include "tp_mlp/splitmix.hpp"

namespace tp_mlp {
namespace {

constexpr std::uint64_t kGolden = 0x9E3779B97F4A7C15ull;  // SplitMix64's increment γ

enum Stream : std::uint64_t {
  kW1 = 1,
  kW2 = 2,
  kInput = 3,
  kB1 = 4,
  kB2 = 5,
  kGradOutput = 6,
  kW3 = 7,
  kB3 = 8,
  kWq = 9,
  kWk = 10,
  kWv = 11,
  kWo = 12,
  kBq = 13,
  kBk = 14,
  kBv = 15,
  kBo = 16,
  kNorm1Weight = 17,
  kNorm1Bias = 18,
  kNorm2Weight = 19,
  kNorm2Bias = 20
};

// A norm's parameter: U(centre - 1/2, centre + 1/2), one row of H.
constexpr double kNormSpread = 0.5;
MasterTensor norm_parameter(std::uint64_t stream, long hidden_size, double centre) {
  return {stream, MasterTensor::Distribution::uniform, 1, hidden_size, kNormSpread, centre};
}

// The counter-th 64-bit output of the generator for (seed, stream).
std::uint64_t random_bits(std::uint64_t seed, std::uint64_t stream, std::uint64_t counter) {
  std::uint64_t key = mix64(seed ^ mix64(stream));
  return mix64(key + (counter + 1) * kGolden);
}

double unit_open_closed(std::uint64_t bits) {  // (0, 1], 53 bits
  return double((bits >> 11) + 1) * 0x1.0p-53;
}

// torch.nn.init.xavier_uniform_: U(-a, a) with a = sqrt(6 / (fan_in + fan_out)).
MasterTensor xavier(std::uint64_t stream, long fan_in, long fan_out) {
  const double bound = std::sqrt(6.0 / double(fan_in + fan_out));
  return {stream, MasterTensor::Distribution::uniform, fan_in, fan_out, bound};
}

// torch.nn.Linear's bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), one row.
MasterTensor linear_bias(std::uint64_t stream, long fan_in, long fan_out) {
  return {stream, MasterTensor::Distribution::uniform, 1, fan_out, 1.0 / std::sqrt(double(fan_in))};
}

MasterTensor standard_normal(std::uint64_t stream, long rows, long cols) {
  return {stream, MasterTensor::Distribution::standard_normal, rows, cols};
}

// The model's tensors hold values of its element type: a bf16 model's are rounded to bf16,
// the same for every rank and for the reference.
MasterTensor in_dtype(MasterTensor t, const Config& cfg) {
  t.bf16 = cfg.dtype == DType::bf16;
  return t;
}

}  // namespace

MasterTensor master_w1(const Config& cfg) {
  return in_dtype(xavier(kW1, cfg.hidden_size, cfg.intermediate_size()), cfg);
}
MasterTensor master_w3(const Config& cfg) {
  return in_dtype(xavier(kW3, cfg.hidden_size, cfg.intermediate_size()), cfg);
}
MasterTensor master_w2(const Config& cfg) {
  return in_dtype(xavier(kW2, cfg.intermediate_size(), cfg.hidden_size), cfg);
}
MasterTensor master_b1(const Config& cfg) {
  return in_dtype(linear_bias(kB1, cfg.hidden_size, cfg.intermediate_size()), cfg);
}
MasterTensor master_b3(const Config& cfg) {
  return in_dtype(linear_bias(kB3, cfg.hidden_size, cfg.intermediate_size()), cfg);
}
MasterTensor master_b2(const Config& cfg) {
  return in_dtype(linear_bias(kB2, cfg.intermediate_size(), cfg.hidden_size), cfg);
}
MasterTensor master_wq(const Config& cfg) {
  return in_dtype(xavier(kWq, cfg.hidden_size, cfg.heads() * cfg.head_size()), cfg);
}
MasterTensor master_wk(const Config& cfg) {
  return in_dtype(xavier(kWk, cfg.hidden_size, cfg.kv_heads() * cfg.head_size()), cfg);
}
MasterTensor master_wv(const Config& cfg) {
  return in_dtype(xavier(kWv, cfg.hidden_size, cfg.kv_heads() * cfg.head_size()), cfg);
}
MasterTensor master_wo(const Config& cfg) {
  return in_dtype(xavier(kWo, cfg.heads() * cfg.head_size(), cfg.hidden_size), cfg);
}
MasterTensor master_bq(const Config& cfg) {
  return in_dtype(linear_bias(kBq, cfg.hidden_size, cfg.heads() * cfg.head_size()), cfg);
}
MasterTensor master_bk(const Config& cfg) {
  return in_dtype(linear_bias(kBk, cfg.hidden_size, cfg.kv_heads() * cfg.head_size()), cfg);
}
MasterTensor master_bv(const Config& cfg) {
  return in_dtype(linear_bias(kBv, cfg.hidden_size, cfg.kv_heads() * cfg.head_size()), cfg);
}
MasterTensor master_bo(const Config& cfg) {
  return in_dtype(linear_bias(kBo, cfg.heads() * cfg.head_size(), cfg.hidden_size), cfg);
}
MasterTensor master_norm_weight(const Config& cfg, int norm) {
  return in_dtype(norm_parameter(norm == 1 ? kNorm1Weight : kNorm2Weight, cfg.hidden_size, 1), cfg);
}
MasterTensor master_norm_bias(const Config& cfg, int norm) {
  return in_dtype(norm_parameter(norm == 1 ? kNorm1Bias : kNorm2Bias, cfg.hidden_size, 0), cfg);
}
MasterTensor master_input(const Config& cfg) {
  return in_dtype(standard_normal(kInput, cfg.tokens(), cfg.hidden_size), cfg);
}
MasterTensor master_grad_output(const Config& cfg) {
  return in_dtype(standard_normal(kGradOutput, cfg.tokens(), cfg.hidden_size), cfg);
}

float master_value(const MasterTensor& t, std::uint64_t seed, long row, long col) {
  std::uint64_t index = std::uint64_t(row) * std::uint64_t(t.cols) + std::uint64_t(col);
  float value = 0.0f;
  switch (t.distribution) {
    case MasterTensor::Distribution::uniform: {
      double u = unit_open_closed(random_bits(seed, t.stream, index));
      value = float(t.centre + t.bound * (2.0 * u - 1.0));
      break;
    }
    case MasterTensor::Distribution::standard_normal: {
      // Box-Muller on two draws of its own, so that element i never depends on i-1.
      double u1 = unit_open_closed(random_bits(seed, t.stream, 2 * index));
      double u2 = unit_open_closed(random_bits(seed, t.stream, 2 * index + 1));
      value = float(std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2));
      break;
    }
  }
  return t.bf16 ? round_to_bf16(value) : value;
}

namespace {

template <typename Ref>
void fill(Ref& out, const MasterTensor& t, std::uint64_t seed, long row0, long col0) {
  using Scalar = typename Ref::Scalar;
  for (Eigen::Index r = 0; r < out.rows(); ++r)
    for (Eigen::Index c = 0; c < out.cols(); ++c)
      out(r, c) = Scalar(master_value(t, seed, row0 + r, col0 + c));
}

template <typename Ref>
void fill_side_by_side(Ref& out, const Config& cfg, LayerPart part, Block rows, Block cols) {
  for (int p = 0; p < cfg.projections(); ++p)
    fill_block(out.middleCols(p * cols.count, cols.count), master_first_layer(cfg, part, p),
               cfg.seed, rows.first, cols.first);
}

template <typename Ref>
void fill_heads_side_by_side(Ref& out, const Config& cfg, LayerPart part, Block rows,
                             Block query_heads, Block kv_heads) {
  const long d = cfg.head_size(), q = query_heads.count * d, kv = kv_heads.count * d;
  const bool weight = part == LayerPart::weight;
  fill_block(out.leftCols(q), weight ? master_wq(cfg) : master_bq(cfg), cfg.seed, rows.first,
             query_heads.first * d);
  fill_block(out.middleCols(q, kv), weight ? master_wk(cfg) : master_bk(cfg), cfg.seed, rows.first,
             kv_heads.first * d);
  fill_block(out.middleCols(q + kv, kv), weight ? master_wv(cfg) : master_bv(cfg), cfg.seed,
             rows.first, kv_heads.first * d);
}

}  // namespace

void fill_block(MatrixRef out, const MasterTensor& t, std::uint64_t seed, long row0, long col0) {
  fill(out, t, seed, row0, col0);
}

void fill_block(MatrixDRef out, const MasterTensor& t, std::uint64_t seed, long row0, long col0) {
  fill(out, t, seed, row0, col0);
}

// The values are bf16 already (a bf16 model's master tensors round them): exact.
void fill_block(MatrixBRef out, const MasterTensor& t, std::uint64_t seed, long row0, long col0) {
  fill(out, t, seed, row0, col0);
}

Matrix master_block(const MasterTensor& t, std::uint64_t seed, Block rows, Block cols) {
  Matrix m(rows.count, cols.count);
  fill_block(m, t, seed, rows.first, cols.first);
  return m;
}

MasterTensor master_first_layer(const Config& cfg, LayerPart part, int projection) {
  const bool up = projection == 1;
  if (part == LayerPart::weight) return up ? master_w3(cfg) : master_w1(cfg);
  return up ? master_b3(cfg) : master_b1(cfg);
}

void fill_first_layer(MatrixRef out, const Config& cfg, LayerPart part, Block rows, Block cols) {
  fill_side_by_side(out, cfg, part, rows, cols);
}

void fill_first_layer(MatrixDRef out, const Config& cfg, LayerPart part, Block rows, Block cols) {
  fill_side_by_side(out, cfg, part, rows, cols);
}

void fill_first_layer(MatrixBRef out, const Config& cfg, LayerPart part, Block rows, Block cols) {
  fill_side_by_side(out, cfg, part, rows, cols);
}

void fill_qkv(MatrixRef out, const Config& cfg, LayerPart part, Block rows, Block query_heads,
              Block kv_heads) {
  fill_heads_side_by_side(out, cfg, part, rows, query_heads, kv_heads);
}

void fill_qkv(MatrixDRef out, const Config& cfg, LayerPart part, Block rows, Block query_heads,
              Block kv_heads) {
  fill_heads_side_by_side(out, cfg, part, rows, query_heads, kv_heads);
}

void fill_qkv(MatrixBRef out, const Config& cfg, LayerPart part, Block rows, Block query_heads,
              Block kv_heads) {
  fill_heads_side_by_side(out, cfg, part, rows, query_heads, kv_heads);
}

}  // namespace tp_mlp
