// tensors: .npy files of the verification pass (see tensors.hpp).
#include "tp_mlp/saved_tensors.hpp"

#include <algorithm>
#include <filesystem>

#include "tp_mlp/init.hpp"
#include "tp_mlp/npy.hpp"

namespace tp_mlp {
namespace {

// Streams a master tensor in blocks of whole rows, about one shard's worth at a time.
void save_master(const std::string& path, const MasterTensor& t, const Config& cfg) {
  const long shard_elements = 2L * cfg.hidden_size * cfg.shard_width();
  const long rows_per_block = std::max(1L, shard_elements / t.cols);
  NpyWriter npy(path, {t.rows, t.cols});
  Matrix block;
  for (long row = 0; row < t.rows; row += rows_per_block) {
    block.resize(std::min(rows_per_block, t.rows - row), t.cols);
    fill_block(block, t, cfg.seed, row, 0);
    npy.append(block);
  }
  npy.commit();
}

}  // namespace

void save_tensors(const Config& cfg, const Matrix& x, const Matrix& y) {
  const std::filesystem::path dir = cfg.tensors_dir;
  const std::vector<long> activation_shape = {cfg.batch_size, cfg.seq_len, cfg.hidden_size};
  save_npy((dir / "x.npy").string(), x, activation_shape);
  save_master((dir / "w1.npy").string(), master_w1(cfg), cfg);
  save_master((dir / "w2.npy").string(), master_w2(cfg), cfg);
  if (cfg.bias) {
    save_master((dir / "b1.npy").string(), master_b1(cfg), cfg);
    save_master((dir / "b2.npy").string(), master_b2(cfg), cfg);
  }
  save_npy((dir / "y.npy").string(), y, activation_shape);
}

}  // namespace tp_mlp
