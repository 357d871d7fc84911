// npy: output files that are never seen half-written, and NumPy's .npy format on top.
//
// Every file goes to `path.tmp` first and is renamed onto `path` only when complete, so a
// crash or an abort leaves either the old file or none, never a truncated one.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "tp_mlp/matrix.hpp"

namespace tp_mlp {

class AtomicFile {
 public:
  explicit AtomicFile(std::string path);  // throws std::runtime_error if it cannot open
  ~AtomicFile();                          // removes the temporary unless committed
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, std::size_t bytes);
  void commit();  // flush, close, rename onto the final path

 private:
  std::string path_, temporary_;
  std::FILE* file_ = nullptr;
};

// A float32, little-endian, C-order .npy array, appended in row-major order, so that a
// matrix too large to hold can be streamed block by block.
class NpyWriter {
 public:
  NpyWriter(const std::string& path, const std::vector<long>& shape);
  void append(const Matrix& rows);  // the next rows, in order
  void commit();                    // checks that every element was written

 private:
  AtomicFile file_;
  long expected_ = 1, written_ = 0;
};

void save_npy(const std::string& path, const Matrix& m, const std::vector<long>& shape);

}  // namespace tp_mlp
