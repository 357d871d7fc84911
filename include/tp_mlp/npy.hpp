// npy: NumPy's .npy format, written through OutputFile, so that no reader ever sees half a file.
#pragma once

#include <string>
#include <vector>

#include "tp_mlp/matrix.hpp"
#include "tp_mlp/output.hpp"

namespace tp_mlp {

// A float32, little-endian, C-order .npy array, appended in row-major order, so that a
// matrix too large to hold can be streamed block by block.
class NpyWriter {
 public:
  NpyWriter(const std::string& path, const std::vector<long>& shape);
  NpyWriter(FileSet& set, const std::string& name, const std::vector<long>& shape);
  void append(const ConstMatrixRef& rows);  // the next rows, in order
  void commit();                            // checks that every element was written

 private:
  void write_header(const std::vector<long>& shape);

  OutputFile file_;
  long expected_ = 1, written_ = 0;
};

void save_npy(const std::string& path, const ConstMatrixRef& m, const std::vector<long>& shape);
void save_npy(FileSet& set, const std::string& name, const ConstMatrixRef& m,
              const std::vector<long>& shape);

}  // namespace tp_mlp
