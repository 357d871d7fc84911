// mlp: the scheme factory and the account of what each scheme allocates (see mlp.hpp).
#include "tp_mlp/mlp.hpp"

#include <stdexcept>

#include "tp_mlp/column_row_mlp.hpp"
#include "tp_mlp/naive_mlp.hpp"

namespace tp_mlp {

const Matrix& MlpScheme::backward(const Matrix&) {
  throw std::logic_error("this scheme has no backward pass");
}

std::unique_ptr<MlpScheme> make_scheme(Scheme scheme, const Config& cfg, TpComm& tp) {
  switch (scheme) {
    case Scheme::megatron:
    case Scheme::megatron_sp:
    case Scheme::serial: return std::make_unique<ColumnRowMlp>(scheme, cfg, tp);
    case Scheme::naive: return std::make_unique<NaiveMlp>(cfg, tp);
  }
  throw std::logic_error("unknown scheme");
}

SchemeBytes scheme_bytes(Scheme scheme, const Config& cfg) {
  // Rank 0 of a group holds the widest blocks (partition.hpp), so its account is the largest.
  const int ways = scheme == Scheme::serial ? 1 : cfg.tp_size;
  const Block columns = block_of(cfg.intermediate_size(), ways, 0);
  const Block tokens =
      scheme == Scheme::megatron_sp ? block_of(cfg.tokens(), ways, 0) : Block{0, cfg.tokens()};
  auto with_object = [](SchemeBytes b, std::size_t object_bytes) {
    b.buffers += double(object_bytes);  // make_scheme allocates the scheme itself too
    return b;
  };
  switch (scheme) {
    case Scheme::megatron:
    case Scheme::megatron_sp:
    case Scheme::serial:
      return with_object(ColumnRowMlp::bytes(scheme, cfg, columns, tokens), sizeof(ColumnRowMlp));
    case Scheme::naive:
      return with_object(NaiveMlp::bytes(cfg, block_of(cfg.hidden_size, ways, 0), columns),
                         sizeof(NaiveMlp));
  }
  throw std::logic_error("unknown scheme");
}

}  // namespace tp_mlp
