// mlp: the scheme factory and the account of what each scheme allocates (see mlp.hpp).
#include "tp_mlp/mlp.hpp"

#include <stdexcept>

#include "tp_mlp/column_row_mlp.hpp"
#include "tp_mlp/naive_mlp.hpp"

namespace tp_mlp {

const Matrix& MlpScheme::backward(const Matrix&) {
  throw std::logic_error("this scheme has no backward pass");
}

namespace {

template <typename T>
std::unique_ptr<MlpScheme> make_of_type(Scheme scheme, const Config& cfg, TpComm& tp) {
  if (scheme == Scheme::naive) return std::make_unique<NaiveMlp<T>>(cfg, tp);
  return std::make_unique<ColumnRowMlp<T>>(scheme, cfg, tp);
}

template <typename T>
SchemeBytes bytes_of_type(Scheme scheme, const Config& cfg) {
  // Rank 0 of a group holds the widest blocks (partition.hpp), so its account is the largest.
  const int ways = scheme == Scheme::serial ? 1 : cfg.tp_size;
  const Block columns = block_of(cfg.intermediate_size(), ways, 0);
  const Block tokens =
      scheme == Scheme::megatron_sp ? block_of(cfg.tokens(), ways, 0) : Block{0, cfg.tokens()};
  SchemeBytes b;
  if (scheme == Scheme::naive) {
    b = NaiveMlp<T>::bytes(cfg, block_of(cfg.hidden_size, ways, 0), columns);
    b.buffers += sizeof(NaiveMlp<T>);  // make_scheme allocates the scheme itself too
  } else {
    b = ColumnRowMlp<T>::bytes(scheme, cfg, columns, tokens);
    b.buffers += sizeof(ColumnRowMlp<T>);
  }
  return b;
}

}  // namespace

std::unique_ptr<MlpScheme> make_scheme(Scheme scheme, const Config& cfg, TpComm& tp) {
  if (cfg.dtype == DType::bf16) return make_of_type<bfloat16>(scheme, cfg, tp);
  return make_of_type<float>(scheme, cfg, tp);
}

SchemeBytes scheme_bytes(Scheme scheme, const Config& cfg) {
  if (cfg.dtype == DType::bf16) return bytes_of_type<bfloat16>(scheme, cfg);
  return bytes_of_type<float>(scheme, cfg);
}

}  // namespace tp_mlp
