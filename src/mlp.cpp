// mlp: the three schemes' shards and forward passes (see mlp.hpp).
#include "tp_mlp/mlp.hpp"

#include <cmath>

#include <unsupported/Eigen/SpecialFunctions>  // the vectorised erf

#include "tp_mlp/gemm.hpp"
#include "tp_mlp/init.hpp"

namespace tp_mlp {

void gelu_in_place(MatrixRef h) {
  auto a = h.array();
  a = 0.5f * a * (1.0f + (a * float(M_SQRT1_2)).erf());
}

namespace {

// Megatron-LM's name for g: identity on the way back, all-reduce on the way forward.
void reduce_from_tp_region(Matrix& partial, TpComm& tp) {
  tp.all_reduce_sum(partial.data(), partial.size());
}

long bytes_of(const Matrix& m) { return long(m.size() * sizeof(float)); }

// This rank's block of a master weight, rows [row0, row0+rows) x cols [col0, col0+cols).
Matrix master_slice(const MasterTensor& t, const Config& cfg, long row0, long rows, long col0,
                    long cols) {
  Matrix m(rows, cols);
  fill_block(m, t, cfg.seed, row0, col0);
  return m;
}

class MegatronMlp final : public MlpScheme {
 public:
  MegatronMlp(const Config& cfg, TpComm& tp) : tp_(tp) {
    const long H = cfg.hidden_size, shard = cfg.intermediate_size() / tp.size();
    const long first = tp.rank() * shard;  // this rank's first column of the 4H dimension
    w1_shard_ = master_slice(master_w1(cfg), cfg, 0, H, first, shard);  // [H, 4H/T]
    w2_shard_ = master_slice(master_w2(cfg), cfg, first, shard, 0, H);  // [4H/T, H]
    h_shard_.resize(cfg.tokens(), shard);                               // [tokens, 4H/T]
    y_.resize(cfg.tokens(), H);                                         // [tokens, H]
  }
  Scheme scheme() const override { return Scheme::megatron; }
  long weight_bytes() const override { return bytes_of(w1_shard_) + bytes_of(w2_shard_); }

  const Matrix& forward(const Matrix& x) override {
    gemm(x, w1_shard_, h_shard_);  // column-parallel: whole columns, no communication
    gelu_in_place(h_shard_);       // so GeLU is local
    gemm(h_shard_, w2_shard_, y_); // row-parallel: a partial sum of Y
    reduce_from_tp_region(y_, tp_);  // the only synchronisation
    return y_;
  }

 private:
  TpComm& tp_;
  Matrix w1_shard_, w2_shard_, h_shard_, y_;
};

class NaiveMlp final : public MlpScheme {
 public:
  NaiveMlp(const Config& cfg, TpComm& tp) : tp_(tp) {
    const long H = cfg.hidden_size, FF = cfg.intermediate_size();
    h_rows_ = H / tp.size();
    h_first_ = tp.rank() * h_rows_;
    ff_cols_ = FF / tp.size();
    ff_first_ = tp.rank() * ff_cols_;
    w1_rows_ = master_slice(master_w1(cfg), cfg, h_first_, h_rows_, 0, FF);  // [H/T, 4H]
    w2_rows_ = master_slice(master_w2(cfg), cfg, ff_first_, ff_cols_, 0, H); // [4H/T, H]
    h_full_.resize(cfg.tokens(), FF);                                        // [tokens, 4H]
    y_.resize(cfg.tokens(), H);                                              // [tokens, H]
  }
  Scheme scheme() const override { return Scheme::naive; }
  long weight_bytes() const override { return bytes_of(w1_rows_) + bytes_of(w2_rows_); }

  const Matrix& forward(const Matrix& x) override {
    gemm(x.middleCols(h_first_, h_rows_), w1_rows_, h_full_);  // a partial sum of X·W1
    reduce_from_tp_region(h_full_, tp_);  // GeLU is not linear: sum before applying it
    auto h_mine = h_full_.middleCols(ff_first_, ff_cols_);      // [tokens, 4H/T]
    gelu_in_place(h_mine);
    gemm(h_mine, w2_rows_, y_);    // a partial sum of Y
    reduce_from_tp_region(y_, tp_);
    return y_;
  }

 private:
  TpComm& tp_;
  long h_rows_, h_first_, ff_cols_, ff_first_;
  Matrix w1_rows_, w2_rows_, h_full_, y_;
};

class SerialMlp final : public MlpScheme {
 public:
  explicit SerialMlp(const Config& cfg) {
    const long H = cfg.hidden_size, FF = cfg.intermediate_size();
    w1_ = master_slice(master_w1(cfg), cfg, 0, H, 0, FF);   // [H, 4H]
    w2_ = master_slice(master_w2(cfg), cfg, 0, FF, 0, H);   // [4H, H]
    h_.resize(cfg.tokens(), FF);                            // [tokens, 4H]
    y_.resize(cfg.tokens(), H);                             // [tokens, H]
  }
  Scheme scheme() const override { return Scheme::serial; }
  long weight_bytes() const override { return bytes_of(w1_) + bytes_of(w2_); }

  const Matrix& forward(const Matrix& x) override {
    gemm(x, w1_, h_);
    gelu_in_place(h_);
    gemm(h_, w2_, y_);
    return y_;
  }

 private:
  Matrix w1_, w2_, h_, y_;
};

}  // namespace

std::unique_ptr<MlpScheme> make_scheme(Scheme scheme, const Config& cfg, TpComm& tp) {
  switch (scheme) {
    case Scheme::megatron: return std::make_unique<MegatronMlp>(cfg, tp);
    case Scheme::naive: return std::make_unique<NaiveMlp>(cfg, tp);
    case Scheme::serial: return std::make_unique<SerialMlp>(cfg);
  }
  return nullptr;  // unreachable: the switch covers every scheme
}

}  // namespace tp_mlp
