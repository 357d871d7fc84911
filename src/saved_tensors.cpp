// saved_tensors: .npy files of the verification pass, as one set (see saved_tensors.hpp).
#include "tp_mlp/saved_tensors.hpp"

#include <algorithm>

#include "tp_mlp/init.hpp"
#include "tp_mlp/npy.hpp"
#include "tp_mlp/output.hpp"

namespace tp_mlp {
namespace {

// Streams a master tensor in blocks of whole rows, about one shard's worth at a time.
void save_master(FileSet& set, const std::string& name, const MasterTensor& t, const Config& cfg) {
  const long shard_elements = 2L * cfg.hidden_size * cfg.shard_width();
  const long rows_per_block = std::max(1L, shard_elements / t.cols);
  NpyWriter npy(set, name, {t.rows, t.cols});
  Matrix block;
  for (long row = 0; row < t.rows; row += rows_per_block) {
    block.resize(std::min(rows_per_block, t.rows - row), t.cols);
    fill_block(block, t, cfg.seed, row, 0);
    npy.append(block);
  }
  npy.commit();
}

}  // namespace

std::vector<std::string> saved_tensor_names(const Config& cfg) {
  std::vector<std::string> names = {"x.npy", "w1.npy", "w2.npy", "y.npy"};
  if (cfg.bias) names.insert(names.end(), {"b1.npy", "b2.npy"});
  return names;
}

void save_tensors(const Config& cfg, const Matrix& x, const Matrix& y) {
  const std::vector<long> activation_shape = {cfg.batch_size, cfg.seq_len, cfg.hidden_size};
  FileSet set(cfg.tensors_dir);
  save_npy(set, "x.npy", x, activation_shape);
  save_master(set, "w1.npy", master_w1(cfg), cfg);
  save_master(set, "w2.npy", master_w2(cfg), cfg);
  if (cfg.bias) {
    save_master(set, "b1.npy", master_b1(cfg), cfg);
    save_master(set, "b2.npy", master_b2(cfg), cfg);
  }
  save_npy(set, "y.npy", y, activation_shape);
  set.commit();
}

}  // namespace tp_mlp
