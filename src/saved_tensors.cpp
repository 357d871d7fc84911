// saved_tensors: .npy files of the verification pass, as one set (see saved_tensors.hpp).
#include "tp_mlp/saved_tensors.hpp"

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "tp_mlp/head_sharding.hpp"
#include "tp_mlp/init.hpp"
#include "tp_mlp/npy.hpp"
#include "tp_mlp/output.hpp"
#include "tp_mlp/partition.hpp"

namespace tp_mlp {
namespace {

// Rows per block when streaming a [rows, cols] tensor: about two shards' worth at a time.
long shard_elements(const Config& cfg) {
  return cfg.hidden_size * block_of(cfg.intermediate_size(), cfg.tp_size, 0).count;
}
long rows_per_block(const Config& cfg, long cols) {
  return std::max(1L, 2 * shard_elements(cfg) / cols);
}

// A master tensor, generated a block of rows at a time.
void save_master(FileSet& set, const std::string& name, const MasterTensor& t, const Config& cfg,
                 SaveBuffers& buffers) {
  const long step = rows_per_block(cfg, t.cols);
  NpyWriter npy(set, name, {t.rows, t.cols});
  for (long row = 0; row < t.rows; row += step) {
    Tensor<float> block = buffers.block(std::min(step, t.rows - row), t.cols);
    fill_block(block, t, cfg.seed, row, 0);
    npy.append(block);
  }
  npy.commit();
}

// What this rank holds of one saved tensor, and where it sits in it.
struct Piece {
  ConstMatrixRef values;  // [rows.count, cols.count]
  Block rows, cols;
};

// The piece of a rank that holds none.
Piece nothing() {
  static const Matrix kNothing;
  return {ConstMatrixRef(kNothing), {0, 0}, {0, 0}};
}

// A tensor of `shape` [rows, cols] of which each rank holds one piece (a rank that holds none,
// an empty one), written by world rank 0 a block of rows at a time: each rank sends the part
// of its piece in those rows, and rank 0 puts every part in its place.
void save_gathered(FileSet* set, const std::string& name, const World& world,
                   const std::vector<long>& shape, const Piece& mine, const Config& cfg,
                   SaveBuffers& buffers) {
  const long rows = shape.front(), cols = shape.back();
  const std::vector<long> me = {mine.rows.first, mine.rows.count, mine.cols.first, mine.cols.count};
  std::vector<long> pieces;  // every rank's four numbers, on rank 0
  world.gather_to_root(me.data(), long(me.size()), pieces);
  std::unique_ptr<NpyWriter> npy;
  if (set) npy = std::make_unique<NpyWriter>(*set, name, shape);
  // The rows of a piece within [row, row + k).
  auto within = [](long first, long count, long row, long k) {
    const long begin = std::max(first, row), end = std::min(first + count, row + k);
    return Block{begin, std::max(0L, end - begin)};
  };
  const long step = rows_per_block(cfg, cols);
  for (long row = 0; row < rows; row += step) {
    const long k = std::min(step, rows - row);
    const Block here = within(mine.rows.first, mine.rows.count, row, k);
    Tensor<float> part = buffers.block(here.count, mine.cols.count);  // to send
    part = mine.values.middleRows(here.first - mine.rows.first, here.count);
    if (!npy) {  // only rank 0 receives
      world.gather_to_root(part.data(), part.size(), nullptr, 0);
      continue;
    }
    Tensor<float> gathered = buffers.gathered(k, cols);
    world.gather_to_root(part.data(), part.size(), gathered.data(), gathered.size());
    Tensor<float> chunk = buffers.chunk(k, cols);
    const float* next = gathered.data();
    for (std::size_t r = 0; r < pieces.size(); r += 4) {
      const Block theirs = within(pieces[r], pieces[r + 1], row, k);
      const long first_col = pieces[r + 2], width = pieces[r + 3];
      chunk.block(theirs.first - row, first_col, theirs.count, width) =
          Eigen::Map<const Matrix>(next, theirs.count, width);
      next += theirs.count * width;
    }
    npy->append(chunk);
  }
  if (npy) npy->commit();
}

// The gradients, whole: dW1 (dW3) are whole columns of the shards' fused [dW1 | dW3] blocks,
// and db1 (db3) of [db1 | db3]; dW2 is their rows; db2, the same on every shard, comes from the
// one that starts at column 0.
void save_gradients(FileSet* set, const Run& run, const std::optional<Gradients>& shard,
                    SaveBuffers& buffers) {
  const Config& cfg = run.cfg;
  const long H = cfg.hidden_size, F = cfg.intermediate_size();
  const Block cols = shard ? shard->columns : Block{};
  auto projection = [&](const Tensor<float>* const Gradients::*fused, long p, long rows) {
    if (!shard) return nothing();
    const Tensor<float>& whole = *((*shard).*fused);
    return Piece{whole.middleCols(p * cols.count, cols.count), {0, rows}, cols};
  };
  const char* dw_in[] = {"dw1.npy", "dw3.npy"};
  const char* db_in[] = {"db1.npy", "db3.npy"};
  for (int p = 0; p < cfg.projections(); ++p)
    save_gathered(set, dw_in[p], run.world, {H, F}, projection(&Gradients::w_in, p, H), cfg,
                  buffers);
  save_gathered(set, "dw2.npy", run.world, {F, H},
                shard ? Piece{*shard->w_out, cols, {0, H}} : nothing(), cfg, buffers);
  if (!cfg.bias) return;
  for (int p = 0; p < cfg.projections(); ++p)
    save_gathered(set, db_in[p], run.world, {1, F}, projection(&Gradients::b_in, p, 1), cfg,
                  buffers);
  const bool first = shard && cols.first == 0;
  save_gathered(set, "db2.npy", run.world, {1, H},
                first ? Piece{*shard->b_out, {0, 1}, {0, H}} : nothing(), cfg, buffers);
}

// Attention's gradients, whole: dWq's columns and dWo's rows are each rank's query heads';
// dWk's and dWv's its KV heads', of which a head several ranks hold (equal, once summed) is
// sent by the first of them, the one holding its group's first query head; dbo, the same on
// every rank, comes from the rank holding query head 0.
void save_attention_gradients(FileSet* set, const Run& run, const std::optional<Gradients>& shard,
                              SaveBuffers& buffers) {
  const Config& cfg = run.cfg;
  const long H = cfg.hidden_size, N = cfg.heads(), K = cfg.kv_heads(), d = cfg.head_size();
  const Block query = shard ? shard->columns : Block{};
  const bool holds = query.count > 0;
  const FusedColumns at = fused_qkv_columns(query, N, K, d);
  // The KV heads this rank sends: those whose group's first query head it holds.
  const HeadSharding heads(N, K, 1);
  long first_sent = K, sent = 0;
  for (long kv = holds ? heads.kv_of(query.first) : K; kv < K; ++kv) {
    const long leader = heads.group(kv).first;
    if (leader >= query.end()) break;
    if (leader < query.first) continue;
    first_sent = std::min(first_sent, kv);
    ++sent;
  }
  const long skipped = holds ? (first_sent - heads.kv_of(query.first)) * d : 0;
  auto piece = [&](const Tensor<float>* const Gradients::*fused, int projection, long rows) {
    if (!holds || ((*shard).*fused) == nullptr || (projection > 0 && sent == 0)) return nothing();
    const Tensor<float>& whole = *((*shard).*fused);
    if (projection == 0)
      return Piece{whole.middleCols(at.here[0].first, at.here[0].count),
                   {0, rows},
                   {query.first * d, query.count * d}};
    return Piece{whole.middleCols(at.here[projection].first + skipped, sent * d),
                 {0, rows},
                 {first_sent * d, sent * d}};
  };
  const char* weights[] = {"dwq.npy", "dwk.npy", "dwv.npy"};
  const char* biases[] = {"dbq.npy", "dbk.npy", "dbv.npy"};
  const long widths[] = {N * d, K * d, K * d};
  for (int j = 0; j < 3; ++j)
    save_gathered(set, weights[j], run.world, {H, widths[j]}, piece(&Gradients::w_in, j, H), cfg,
                  buffers);
  save_gathered(
      set, "dwo.npy", run.world, {N * d, H},
      holds ? Piece{*shard->w_out, {query.first * d, query.count * d}, {0, H}} : nothing(), cfg,
      buffers);
  if (!cfg.bias) return;
  for (int j = 0; j < 3; ++j)
    save_gathered(set, biases[j], run.world, {1, widths[j]}, piece(&Gradients::b_in, j, 1), cfg,
                  buffers);
  const bool first = holds && query.first == 0;
  save_gathered(set, "dbo.npy", run.world, {1, H},
                first ? Piece{*shard->b_out, {0, 1}, {0, H}} : nothing(), cfg, buffers);
}

// The norms' gradients, whole on every rank of the group: from the one holding query head 0.
void save_norm_gradients(FileSet* set, const Run& run, const std::optional<LayerGradients>& parts,
                         SaveBuffers& buffers) {
  const Config& cfg = run.cfg;
  const long H = cfg.hidden_size;
  const bool first =
      parts && parts->attention.columns.first == 0 && parts->attention.columns.count > 0;
  const NormGradients* norms[] = {parts ? &parts->norm1 : nullptr, parts ? &parts->norm2 : nullptr};
  for (int which = 0; which < 2; ++which) {
    const std::string name = "dnorm" + std::to_string(which + 1);
    save_gathered(set, name + "_w.npy", run.world, {1, H},
                  first ? Piece{*norms[which]->weight, {0, 1}, {0, H}} : nothing(), cfg, buffers);
    if (cfg.norm_kind() == NormKind::layer)
      save_gathered(set, name + "_b.npy", run.world, {1, H},
                    first ? Piece{*norms[which]->bias, {0, 1}, {0, H}} : nothing(), cfg, buffers);
  }
}

// Every master tensor of the run's block with the name it is saved as (without ".npy"): the
// layer's in the order they are applied, Norm1, attention, Norm2, the MLP.
std::vector<std::pair<std::string, MasterTensor>> masters(const Config& cfg) {
  std::vector<std::pair<std::string, MasterTensor>> m;
  const bool layer = cfg.block == BlockKind::layer, swiglu = cfg.activation == Activation::swiglu;
  auto norm = [&](int which) {
    const std::string name = "norm" + std::to_string(which);
    m.emplace_back(name + "_w", master_norm_weight(cfg, which));
    if (cfg.norm_kind() == NormKind::layer)
      m.emplace_back(name + "_b", master_norm_bias(cfg, which));
  };
  if (cfg.block != BlockKind::mlp) {
    if (layer) norm(1);
    m.insert(m.end(), {{"wq", master_wq(cfg)},
                       {"wk", master_wk(cfg)},
                       {"wv", master_wv(cfg)},
                       {"wo", master_wo(cfg)}});
    if (cfg.bias)
      m.insert(m.end(), {{"bq", master_bq(cfg)},
                         {"bk", master_bk(cfg)},
                         {"bv", master_bv(cfg)},
                         {"bo", master_bo(cfg)}});
    if (layer) norm(2);
  }
  if (cfg.block == BlockKind::attention) return m;
  m.emplace_back("w1", master_w1(cfg));
  if (swiglu) m.emplace_back("w3", master_w3(cfg));
  m.emplace_back("w2", master_w2(cfg));
  if (!cfg.bias) return m;
  m.emplace_back("b1", master_b1(cfg));
  if (swiglu) m.emplace_back("b3", master_b3(cfg));
  m.emplace_back("b2", master_b2(cfg));
  return m;
}

}  // namespace

// Every block is at most two shards, or one row of the widest tensor (H or F columns).
SaveBuffers::SaveBuffers(Workspace& ws, const Config& cfg, bool root)
    : block_(ws.matrix<float>(
          1, std::max({2 * shard_elements(cfg), long(cfg.hidden_size), cfg.intermediate_size()}))),
      gathered_(ws.matrix<float>(1, root ? block_.size() : 0)),
      chunk_(ws.matrix<float>(1, root ? block_.size() : 0)) {}

namespace {

// `buffer`'s first rows·cols elements as a [rows, cols] matrix.
Tensor<float> as_matrix(Tensor<float>& buffer, long rows, long cols) {
  if (rows * cols > buffer.size()) throw std::logic_error("a block larger than its buffer");
  return Tensor<float>(buffer.data(), rows, cols);
}

}  // namespace

Tensor<float> SaveBuffers::block(long rows, long cols) { return as_matrix(block_, rows, cols); }
Tensor<float> SaveBuffers::gathered(long rows, long cols) {
  return as_matrix(gathered_, rows, cols);
}
Tensor<float> SaveBuffers::chunk(long rows, long cols) { return as_matrix(chunk_, rows, cols); }

std::vector<std::string> saved_tensor_names(const Config& cfg) {
  std::vector<std::string> names = {"x.npy"};
  for (const auto& [name, tensor] : masters(cfg)) names.push_back(name + ".npy");
  names.emplace_back("y.npy");
  if (!cfg.backward) return names;
  names.insert(names.end(), {"dy.npy", "dx.npy"});
  for (const auto& [name, tensor] : masters(cfg)) names.push_back("d" + name + ".npy");
  return names;
}

void save_tensors(const Run& run, const SavedPass& pass) {
  const Config& cfg = run.cfg;
  const bool root = run.world.is_root();
  const std::vector<long> activation_shape = {cfg.batch_size, cfg.seq_len, cfg.hidden_size};
  std::unique_ptr<FileSet> set;
  if (root) {
    set = std::make_unique<FileSet>(cfg.tensors_dir);
    save_npy(*set, "x.npy", pass.x, activation_shape);
    for (const auto& [name, tensor] : masters(cfg))
      save_master(*set, name + ".npy", tensor, cfg, pass.buffers);
    save_npy(*set, "y.npy", pass.y, activation_shape);
  }
  if (cfg.backward) {
    if (root) {
      save_npy(*set, "dy.npy", pass.dy, activation_shape);
      save_npy(*set, "dx.npy", pass.dx, activation_shape);
    }
    const std::optional<LayerGradients>& parts = pass.parts;
    if (cfg.block != BlockKind::mlp)
      save_attention_gradients(
          set.get(), run, parts ? std::optional(parts->attention) : std::nullopt, pass.buffers);
    if (cfg.block == BlockKind::layer) save_norm_gradients(set.get(), run, parts, pass.buffers);
    if (cfg.block == BlockKind::mlp) save_gradients(set.get(), run, pass.gradients, pass.buffers);
    if (cfg.block == BlockKind::layer)
      save_gradients(set.get(), run, parts ? std::optional(parts->mlp) : std::nullopt,
                     pass.buffers);
  }
  if (set) set->commit();
}

}  // namespace tp_mlp
